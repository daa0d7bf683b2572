"""The CNN of PyTorch's CIFAR-10 tutorial in TensorFlow: tf.Variables in a tf.Module, tf.nn ops,
tf.GradientTape, and SGD with momentum applied by hand; the step compiled by tf.function.

TensorFlow computes in NHWC: its CPU kernels for conv2d and max_pool2d take no other layout. So the
spec's NCHW images and OIHW kernels are converted once, on the way in, and the weights back at the end.
The network's widths come from the weights it is given (the convolutions have 6*width and 16*width channels).
"""

import tensorflow as tf

from tasks.cnn import Result

NAMES = ("conv1_w", "conv1_b", "conv2_w", "conv2_b", "fc1_w", "fc1_b", "fc2_w", "fc2_b", "fc3_w", "fc3_b")


def to_nhwc(params):
    """The spec's weights in TensorFlow's layout."""
    params = dict(params)
    channels = len(params["conv2_w"])  # 16 * width
    for conv in ("conv1_w", "conv2_w"):
        params[conv] = params[conv].transpose(2, 3, 1, 0)  # OIHW -> HWIO, what tf.nn.conv2d expects
    # fc1 reads the flattened channels x 5 x 5 map: its rows go from C,H,W order (PyTorch's flatten of NCHW)
    # to H,W,C order (the flatten of NHWC).
    params["fc1_w"] = params["fc1_w"].reshape(channels, 5, 5, 120).transpose(1, 2, 0, 3).reshape(-1, 120)
    return params


def to_spec(params):
    """The inverse of to_nhwc: TensorFlow's layout back to the spec's."""
    params = dict(params)
    channels = params["conv2_w"].shape[-1]  # HWIO: the last axis is conv2's outputs
    for conv in ("conv1_w", "conv2_w"):
        params[conv] = params[conv].transpose(3, 2, 0, 1)  # HWIO -> OIHW
    params["fc1_w"] = params["fc1_w"].reshape(5, 5, channels, 120).transpose(2, 0, 1, 3).reshape(-1, 120)
    return params


class Net(tf.Module):
    def __init__(self, params):
        super().__init__()
        for name in NAMES:
            setattr(self, name, tf.Variable(params[name], name=name))

    def __call__(self, x):  # x: (batch, 32, 32, 3)
        x = tf.nn.relu(tf.nn.conv2d(x, self.conv1_w, strides=1, padding="VALID") + self.conv1_b)
        x = tf.nn.max_pool2d(x, ksize=2, strides=2, padding="VALID")
        x = tf.nn.relu(tf.nn.conv2d(x, self.conv2_w, strides=1, padding="VALID") + self.conv2_b)
        x = tf.nn.max_pool2d(x, ksize=2, strides=2, padding="VALID")
        x = tf.reshape(x, [-1, self.fc1_w.shape[0]])  # H, W, C order: fc1_w's rows were permuted to match
        x = tf.nn.relu(tf.matmul(x, self.fc1_w) + self.fc1_b)
        x = tf.nn.relu(tf.matmul(x, self.fc2_w) + self.fc2_b)
        return tf.matmul(x, self.fc3_w) + self.fc3_b


def cross_entropy(logits, labels):
    return tf.reduce_mean(tf.nn.sparse_softmax_cross_entropy_with_logits(labels=labels, logits=logits))


def train(problem, device, variant):
    device_name = "/GPU:0" if device == "gpu" else "/CPU:0"
    lr, momentum = problem.recipe.hyper["lr"], problem.recipe.hyper["momentum"]
    with tf.device(device_name):
        # NCHW -> NHWC once, on the device: the training set stays there and each step gathers its batch.
        X = tf.transpose(tf.constant(problem.x_train), [0, 2, 3, 1])
        Y = tf.identity(tf.constant(problem.y_train))  # tf.constant alone stays in host memory
        model = Net(to_nhwc(problem.params))
        velocity = [tf.Variable(tf.zeros_like(p)) for p in model.trainable_variables]

    def train_step(rows):
        with tf.GradientTape() as tape:
            loss = cross_entropy(model(tf.gather(X, rows)), tf.gather(Y, rows))
        gradients = tape.gradient(loss, model.trainable_variables)
        # PyTorch's momentum: v = momentum * v + g; p -= lr * v. (Keras' SGD folds lr into its velocity,
        # m = momentum * m - lr * g; p += m: the same update for a constant lr, rounded differently.)
        for p, v, g in zip(model.trainable_variables, velocity, gradients):
            v.assign(momentum * v + g)
            p.assign_sub(lr * v)
        return loss

    predict = model.__call__
    if variant != "tensorflow-eager":
        train_step = tf.function(train_step)
        # One graph for every chunk size (the last chunk of the test set may be smaller).
        predict = tf.function(predict, input_signature=[tf.TensorSpec([None, 32, 32, 3], X.dtype)])

    for rows in problem.batches:
        with tf.device(device_name):
            loss = train_step(tf.constant(rows))
        yield float(loss)

    with tf.device(device_name):
        x_test = tf.transpose(tf.constant(problem.x_test), [0, 2, 3, 1])
        n, chunk = len(problem.x_test), problem.eval_batch_size
        test_logits = tf.concat([predict(x_test[i:i + chunk]) for i in range(0, n, chunk)], axis=0)

    params = to_spec({name: getattr(model, name).numpy() for name in NAMES})
    return Result(params=params, test_logits=test_logits.numpy(), layout="NHWC")
