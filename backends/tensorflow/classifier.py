"""The 3-zone classifier in TensorFlow, written the three ways TensorFlow code is found in the wild.

- "tensorflow" (TF2): the weights are tf.Variables in a tf.Module, tf.GradientTape records the forward
  pass, and the whole training step is compiled into a graph by tf.function.
- "tensorflow-eager": the same step, run op by op in eager mode (what TF2 code does without tf.function).
- "tensorflow-loop": the same step inside a `for i in tf.range(n)` loop, the whole loop compiled by one
  tf.function (AutoGraph makes it a tf.while_loop), its losses returned at the end in a TensorArray.
- "tensorflow-v1": the graph-and-session style of TF1 that the course shows, through tf.compat.v1:
  placeholders, optimizer.minimize, and Session.run feeding one batch at a time.

manual-sgd is the course's loop, the update p -= lr * grad applied by hand with assign_sub: in TF2 on
the tape's gradients, in TF1 on tf.gradients' (the learning rate fed through a placeholder). The other recipes use tf.keras.optimizers (TF2) and tf.compat.v1.train (TF1).
"""

import tensorflow as tf

from tasks.classifier import Chunk, Compiled, Result

NAMES = ("W1", "b1", "W2", "b2")

ADAM_NOTE = ("Adam adds epsilon to sqrt(v) before the bias correction (the paper's 'epsilon hat'): "
             "it equals the reference with eps / sqrt(1 - beta2^t) in place of eps (32x eps at step 1).")
KERAS_MOMENTUM_NOTE = ("Keras' SGD keeps its velocity with the learning rate folded in and negated "
                       "(m = momentum * m - lr * g; p += m): the same update as the reference for a "
                       "constant lr, rounded differently.")
KERAS_FLOAT32_NOTE = ("Keras on TensorFlow casts Python-float hyper-parameters to float64 through float32 "
                      "(tf.cast(0.9, tf.float64) is 0.8999999761581421): {what}.")
KERAS_FLOAT32_IN = {"sgd-momentum": "SGD's momentum",
                    "adam": "Adam's beta1 and beta2 in its bias corrections"}


def train(problem, device, variant):
    device_name = "/GPU:0" if device == "gpu" else "/CPU:0"
    if variant == "tensorflow-v1":
        return (yield from train_v1(problem, device_name))
    return (yield from train_v2(problem, device_name, compiled=variant in ("tensorflow", "tensorflow-loop"),
                                whole_loop=(variant == "tensorflow-loop")))


def cross_entropy(logits, labels):
    return tf.reduce_mean(tf.nn.sparse_softmax_cross_entropy_with_logits(labels=labels, logits=logits))


# ------------------------------------------------------------------------------------------------ TF2

class MLP(tf.Module):
    def __init__(self, params):
        super().__init__()
        # x @ W + b, so the weights keep the spec's (in, out) layout (as Keras' Dense kernel does).
        self.W1 = tf.Variable(params["W1"], name="W1")
        self.b1 = tf.Variable(params["b1"], name="b1")
        self.W2 = tf.Variable(params["W2"], name="W2")
        self.b2 = tf.Variable(params["b2"], name="b2")

    def __call__(self, x):
        return tf.nn.relu(x @ self.W1 + self.b1) @ self.W2 + self.b2


def keras_optimizer(recipe):
    h = recipe.hyper
    if recipe.name == "sgd-momentum":
        return tf.keras.optimizers.SGD(learning_rate=h["lr"], momentum=h["momentum"])
    if recipe.name == "adam":
        return tf.keras.optimizers.Adam(learning_rate=h["lr"], beta_1=h["beta1"], beta_2=h["beta2"],
                                        epsilon=h["eps"])
    if recipe.name == "adadelta":
        return tf.keras.optimizers.Adadelta(learning_rate=h["lr"], rho=h["rho"], epsilon=h["eps"])
    raise ValueError(f"no optimizer for recipe {recipe.name}")


def train_v2(problem, device_name, compiled, whole_loop=False):
    manual = problem.recipe.name == "manual-sgd"
    with tf.device(device_name):
        # tf.constant alone stays in host memory; tf.identity under the device scope places the training set on it,
        # so each step gathers its batch on the device.
        X, Y = tf.identity(tf.constant(problem.x_train)), tf.identity(tf.constant(problem.y_train))
        model = MLP(problem.params)
        if not manual:
            # Keras keeps the learning rate in a variable of dtype floatx (float32 by default), which
            # would round it before a float64 update; the optimizer's slots follow the variables' dtype.
            tf.keras.backend.set_floatx(problem.precision)
            optimizer = keras_optimizer(problem.recipe)
            optimizer.build(model.trainable_variables)

    def sgd_step(rows, lr):
        with tf.GradientTape() as tape:
            loss = cross_entropy(model(tf.gather(X, rows)), tf.gather(Y, rows))
        gradients = tape.gradient(loss, model.trainable_variables)
        for variable, gradient in zip(model.trainable_variables, gradients):
            variable.assign_sub(lr * gradient)
        return loss

    def optimizer_step(rows):
        with tf.GradientTape() as tape:
            loss = cross_entropy(model(tf.gather(X, rows)), tf.gather(Y, rows))
        gradients = tape.gradient(loss, model.trainable_variables)
        optimizer.apply_gradients(zip(gradients, model.trainable_variables))
        return loss

    train_step = sgd_step if manual else optimizer_step
    if whole_loop:
        # Batches and rates of any number of steps: one graph serves the warm-up call and the training.
        @tf.function(input_signature=[tf.TensorSpec([None, problem.batch_size], tf.int64),
                                      tf.TensorSpec([None], X.dtype)])
        def train_loop(batches, rates):
            steps = tf.shape(batches)[0]
            losses = tf.TensorArray(X.dtype, size=steps)
            for i in tf.range(steps):  # AutoGraph: a tf.while_loop
                loss = sgd_step(batches[i], rates[i]) if manual else optimizer_step(batches[i])
                losses = losses.write(i, loss)
            return losses.stack()

        with tf.device(device_name):
            batches = tf.constant(problem.batches)
            rates = tf.constant([problem.learning_rate(i) for i in range(problem.steps)], X.dtype)
            # A call over zero batches traces the loop and lets the runtime optimize the graph without
            # training; Compiled() tells the worker that compilation ends here.
            train_loop(batches[:0], rates[:0])
            yield Compiled()
            losses = train_loop(batches, rates)
        yield Chunk(losses.numpy())
    else:
        if compiled:
            train_step = tf.function(train_step)
        for i, rows in enumerate(problem.batches):
            with tf.device(device_name):
                # Tensors, not Python numbers: tf.function traces a new graph for every new Python value.
                if manual:
                    loss = train_step(tf.constant(rows), tf.constant(problem.learning_rate(i), X.dtype))
                else:
                    loss = train_step(tf.constant(rows))
            yield float(loss)

    with tf.device(device_name):
        val_logits = model(tf.constant(problem.x_val))
    return Result(params={name: getattr(model, name).numpy() for name in NAMES},
                  val_logits=val_logits.numpy(), notes=keras_notes(problem))


def keras_notes(problem):
    notes = {"adam": [ADAM_NOTE], "sgd-momentum": [KERAS_MOMENTUM_NOTE]}.get(problem.recipe.name, [])
    if problem.precision == "float64" and problem.recipe.name in KERAS_FLOAT32_IN:
        notes.append(KERAS_FLOAT32_NOTE.format(what=KERAS_FLOAT32_IN[problem.recipe.name]))
    return notes


# ------------------------------------------------------------------------------------------------ TF1

def v1_optimizer(recipe, learning_rate, dtype):
    h = recipe.hyper
    # tf.compat.v1 optimizers turn Python floats into float32 tensors and cast them to the variables'
    # dtype, which in float64 would make momentum 0.8999999762; constants of the variables' dtype stay exact.
    c = lambda value: tf.constant(value, dtype)
    train = tf.compat.v1.train
    if recipe.name == "sgd-momentum":
        return train.MomentumOptimizer(learning_rate, momentum=c(h["momentum"]))
    if recipe.name == "adam":
        return train.AdamOptimizer(learning_rate, beta1=c(h["beta1"]), beta2=c(h["beta2"]),
                                   epsilon=c(h["eps"]))
    if recipe.name == "adadelta":
        return train.AdadeltaOptimizer(learning_rate, rho=c(h["rho"]), epsilon=c(h["eps"]))
    raise ValueError(f"no optimizer for recipe {recipe.name}")


def train_v1(problem, device_name):
    v1 = tf.compat.v1
    dtype = tf.as_dtype(problem.precision)

    # A graph of its own rather than tf.compat.v1.disable_eager_execution(), which is process-wide.
    graph = tf.Graph()
    with graph.as_default(), tf.device(device_name):
        x = v1.placeholder(dtype, shape=[None, 2], name="x")
        y = v1.placeholder(tf.int64, shape=[None], name="y")
        learning_rate = v1.placeholder(dtype, shape=[], name="learning_rate")

        W1 = v1.Variable(problem.params["W1"], name="W1")
        b1 = v1.Variable(problem.params["b1"], name="b1")
        W2 = v1.Variable(problem.params["W2"], name="W2")
        b2 = v1.Variable(problem.params["b2"], name="b2")
        hidden = tf.nn.relu(tf.matmul(x, W1) + b1)
        logits = tf.matmul(hidden, W2) + b2
        loss = cross_entropy(logits, y)

        if problem.recipe.name == "manual-sgd":
            # The course's loop: tf.gradients builds the backward graph, assign_sub applies the update.
            weights = [W1, b1, W2, b2]
            gradients = tf.gradients(loss, weights)
            train_op = tf.group(*[w.assign_sub(learning_rate * g) for w, g in zip(weights, gradients)])
        else:
            train_op = v1_optimizer(problem.recipe, learning_rate, dtype).minimize(loss)
        init = v1.global_variables_initializer()
    graph.finalize()

    notes = [ADAM_NOTE] if problem.recipe.name == "adam" else []
    X, Y = problem.x_train, problem.y_train
    sess = v1.Session(graph=graph)
    try:
        sess.run(init)
        for i, rows in enumerate(problem.batches):
            feed = {x: X[rows], y: Y[rows], learning_rate: problem.learning_rate(i)}
            # One run: the loss comes from the forward pass that feeds the update, so from before it.
            _, batch_loss = sess.run([train_op, loss], feed_dict=feed)
            yield float(batch_loss)
        val_logits = sess.run(logits, feed_dict={x: problem.x_val})
        params = dict(zip(NAMES, sess.run([W1, b1, W2, b2])))
    finally:
        sess.close()
    return Result(params=params, val_logits=val_logits, notes=notes)
