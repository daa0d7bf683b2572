"""Lecture 4's ladder in TensorFlow, slide by slide: the pre-2.0 graph (placeholders, tf.gradients,
Session.run); TF 2 tensors with the gradients by hand; GradientTape; tf.custom_gradient (a ReLU with its own
gradient); Keras layers with a tape and the update by hand (the lecture's "Keras: High-Level Wrapper"); an
optimizer; a tf.Module of one's own; Keras' compile() and fit() ("Keras can handle the training loop for you!").

Every level runs eagerly, as the lecture writes it (no tf.function): the variants of other tasks compile. The
loss is the sum of squared errors throughout: TensorFlow's own tf.nn.l2_loss is half of it; Keras' predefined
losses average over the outputs, so fit() gets a Loss of one's own whose reduction is "sum".
"""

import time

import tensorflow as tf

from tasks.ladder import Chunk, Result


def by_hand(problem, device):
    x, y = tf.constant(problem.x), tf.constant(problem.y)
    w1, w2 = tf.Variable(problem.w1), tf.Variable(problem.w2)
    learning_rate = problem.lr
    for t in range(problem.steps):
        h = tf.matmul(x, w1)
        h_relu = tf.maximum(h, 0)
        y_pred = tf.matmul(h_relu, w2)
        loss = tf.reduce_sum((y_pred - y) ** 2)

        grad_y_pred = 2.0 * (y_pred - y)
        grad_w2 = tf.matmul(h_relu, grad_y_pred, transpose_a=True)
        grad_h_relu = tf.matmul(grad_y_pred, w2, transpose_b=True)
        grad_h = tf.where(h < 0, tf.zeros_like(grad_h_relu), grad_h_relu)
        grad_w1 = tf.matmul(x, grad_h, transpose_a=True)

        w1.assign(w1 - learning_rate * grad_w1)
        w2.assign(w2 - learning_rate * grad_w2)
        yield float(loss)
    return Result(w1.numpy(), w2.numpy())


def autograd(problem, device):
    x, y = tf.constant(problem.x), tf.constant(problem.y)
    w1, w2 = tf.Variable(problem.w1), tf.Variable(problem.w2)
    learning_rate = problem.lr
    for t in range(problem.steps):
        with tf.GradientTape() as tape:
            h = tf.maximum(tf.matmul(x, w1), 0)
            y_pred = tf.matmul(h, w2)
            diff = y_pred - y
            loss = tf.reduce_sum(diff ** 2)
        gradients = tape.gradient(loss, [w1, w2])
        w1.assign(w1 - learning_rate * gradients[0])
        w2.assign(w2 - learning_rate * gradients[1])
        yield float(loss)
    return Result(w1.numpy(), w2.numpy())


def custom_function(problem, device):
    @tf.custom_gradient
    def my_relu(x):
        def grad(grad_y):
            return tf.where(x < 0, tf.zeros_like(grad_y), grad_y)
        return tf.maximum(x, 0), grad

    x, y = tf.constant(problem.x), tf.constant(problem.y)
    w1, w2 = tf.Variable(problem.w1), tf.Variable(problem.w2)
    learning_rate = problem.lr
    for t in range(problem.steps):
        with tf.GradientTape() as tape:
            h = my_relu(tf.matmul(x, w1))
            y_pred = tf.matmul(h, w2)
            diff = y_pred - y
            loss = tf.reduce_sum(diff ** 2)
        gradients = tape.gradient(loss, [w1, w2])
        w1.assign(w1 - learning_rate * gradients[0])
        w2.assign(w2 - learning_rate * gradients[1])
        yield float(loss)
    return Result(w1.numpy(), w2.numpy())


def layers(problem, device):
    tf.keras.backend.set_floatx(problem.precision)
    x, y = tf.constant(problem.x), tf.constant(problem.y)
    N, D, H, D_out = problem.sizes
    model = tf.keras.Sequential()
    model.add(tf.keras.Input(shape=(D,)))
    model.add(tf.keras.layers.Dense(H, activation=tf.nn.relu, use_bias=False))
    model.add(tf.keras.layers.Dense(D_out, use_bias=False))
    model.set_weights([problem.w1, problem.w2])

    learning_rate = problem.lr
    for t in range(problem.steps):
        with tf.GradientTape() as tape:
            y_pred = model(x)
            loss = 2 * tf.nn.l2_loss(y_pred - y)
        gradients = tape.gradient(loss, model.trainable_variables)
        for w, grad in zip(model.trainable_variables, gradients):
            w.assign(w - learning_rate * grad)
        yield float(loss)
    return Result(*model.get_weights())


def optimizer(problem, device):
    tf.keras.backend.set_floatx(problem.precision)
    x, y = tf.constant(problem.x), tf.constant(problem.y)
    N, D, H, D_out = problem.sizes
    model = tf.keras.Sequential()
    model.add(tf.keras.Input(shape=(D,)))
    model.add(tf.keras.layers.Dense(H, activation=tf.nn.relu, use_bias=False))
    model.add(tf.keras.layers.Dense(D_out, use_bias=False))
    model.set_weights([problem.w1, problem.w2])
    optimizer = tf.optimizers.SGD(problem.lr)

    for t in range(problem.steps):
        with tf.GradientTape() as tape:
            y_pred = model(x)
            loss = 2 * tf.nn.l2_loss(y_pred - y)
        gradients = tape.gradient(loss, model.trainable_variables)
        optimizer.apply_gradients(zip(gradients, model.trainable_variables))
        yield float(loss)
    return Result(*model.get_weights())


def model_class(problem, device):
    class TwoLayerNet(tf.Module):
        def __init__(self, w1, w2):
            super().__init__()
            self.w1 = tf.Variable(w1)
            self.w2 = tf.Variable(w2)

        def __call__(self, x):
            h_relu = tf.maximum(tf.matmul(x, self.w1), 0)
            y_pred = tf.matmul(h_relu, self.w2)
            return y_pred

    x, y = tf.constant(problem.x), tf.constant(problem.y)
    model = TwoLayerNet(problem.w1, problem.w2)
    optimizer = tf.optimizers.SGD(problem.lr)

    for t in range(problem.steps):
        with tf.GradientTape() as tape:
            y_pred = model(x)
            loss = 2 * tf.nn.l2_loss(y_pred - y)
        gradients = tape.gradient(loss, model.trainable_variables)
        optimizer.apply_gradients(zip(gradients, model.trainable_variables))
        yield float(loss)
    return Result(model.w1.numpy(), model.w2.numpy())


def fit(problem, device):
    class SumSquaredError(tf.keras.losses.Loss):
        def call(self, y_true, y_pred):
            return tf.reduce_sum((y_pred - y_true) ** 2, axis=-1)

    class StepLosses(tf.keras.callbacks.Callback):
        """Each step's loss (logs["loss"]: one batch an epoch) and its time inside fit()."""
        def on_train_batch_begin(self, batch, logs=None):
            self.began = time.perf_counter()

        def on_train_batch_end(self, batch, logs=None):
            seconds.append(time.perf_counter() - self.began)
            losses.append(float(logs["loss"]))

    tf.keras.backend.set_floatx(problem.precision)
    x, y = tf.constant(problem.x), tf.constant(problem.y)
    N, D, H, D_out = problem.sizes
    model = tf.keras.Sequential()
    model.add(tf.keras.Input(shape=(D,)))
    model.add(tf.keras.layers.Dense(H, activation=tf.nn.relu, use_bias=False))
    model.add(tf.keras.layers.Dense(D_out, use_bias=False))
    model.set_weights([problem.w1, problem.w2])
    optimizer = tf.optimizers.SGD(problem.lr)

    model.compile(loss=SumSquaredError(reduction="sum"), optimizer=optimizer)
    losses, seconds = [], []
    model.fit(x, y, epochs=problem.steps, batch_size=N, shuffle=False, verbose=0, callbacks=[StepLosses()])
    yield Chunk(losses, step_seconds=seconds)
    return Result(*model.get_weights())


def graph(problem, device):
    tf1 = tf.compat.v1
    with tf.Graph().as_default():
        N, D, H, D_out = problem.sizes
        x = tf1.placeholder(problem.precision, shape=(N, D))
        y = tf1.placeholder(problem.precision, shape=(N, D_out))
        w1 = tf1.Variable(problem.w1)
        w2 = tf1.Variable(problem.w2)

        h = tf.maximum(tf.matmul(x, w1), 0)
        y_pred = tf.matmul(h, w2)
        diff = y_pred - y
        loss = tf.reduce_sum(diff ** 2)
        grad_w1, grad_w2 = tf1.gradients(loss, [w1, w2])
        learning_rate = problem.lr
        new_w1 = w1.assign(w1 - learning_rate * grad_w1)
        new_w2 = w2.assign(w2 - learning_rate * grad_w2)
        updates = tf.group(new_w1, new_w2)

        with tf1.Session() as sess:
            sess.run(tf1.global_variables_initializer())
            values = {x: problem.x, y: problem.y}
            for t in range(problem.steps):
                loss_val, _ = sess.run([loss, updates], feed_dict=values)
                yield float(loss_val)
            return Result(*sess.run([w1, w2]))


LEVELS = {"by-hand": by_hand, "autograd": autograd, "custom-function": custom_function, "layers": layers,
          "optimizer": optimizer, "model-class": model_class, "fit": fit, "graph": graph}


def train(problem, device, variant):
    return (yield from LEVELS[problem.recipe.name](problem, device))
