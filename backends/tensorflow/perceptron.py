"""Course 1's perceptron in TensorFlow: tf.Variables, tf.GradientTape, the update by hand with assign_sub.

- "tensorflow": the step compiled into a graph by tf.function, the learning rate passed in as a tensor.
- "tensorflow-eager": the same step, run op by op.
- "tensorflow-loop": the whole loop (tf.range) compiled by one tf.function; costs and norms come back
  at the end in TensorArrays.
- "tensorflow-v1": TF1's graph and session through tf.compat.v1: placeholders, tf.gradients, Session.run.
"""

import numpy as np
import tensorflow as tf

from tasks.perceptron import Chunk, Compiled, Result

NAMES = ("theta1", "bias1", "theta2", "bias2")


def forward(params, x):
    y = tf.nn.relu(tf.linalg.matvec(params["theta1"], x) + params["bias1"])
    return tf.linalg.matvec(params["theta2"], y) + params["bias2"]


def cost(z):
    return tf.reduce_sum(z) ** 2


def norm(params):
    return tf.sqrt(tf.add_n([tf.reduce_sum(p * p) for p in params.values()]))


def train(problem, device, variant):
    device_name = "/GPU:0" if device == "gpu" else "/CPU:0"
    if variant == "tensorflow-v1":
        return (yield from train_v1(problem, device_name))

    with tf.device(device_name):
        params = {k: tf.Variable(v, name=k) for k, v in problem.params.items()}
        samples = tf.constant(problem.samples)
        rates = tf.constant([problem.learning_rate(i) for i in range(problem.steps)], samples.dtype)

    def step(i):
        x, lr = samples[i], rates[i]  # the samples stay on the device; only the step number goes in
        with tf.GradientTape() as tape:
            c = cost(forward(params, x))
        grads = tape.gradient(c, params)
        for k, p in params.items():
            p.assign_sub(lr * grads[k])
        return c, norm(params)

    with tf.device(device_name):
        if variant == "tensorflow-loop":
            @tf.function(input_signature=[tf.TensorSpec([], tf.int32)])
            def train_loop(steps):
                costs = tf.TensorArray(samples.dtype, size=steps)
                norms = tf.TensorArray(samples.dtype, size=steps)
                for i in tf.range(steps):  # AutoGraph: a tf.while_loop
                    c, n = step(i)
                    costs, norms = costs.write(i, c), norms.write(i, n)
                return costs.stack(), norms.stack()

            # Tracing now, without training, lets Compiled() tell the worker that compilation ends here.
            train_loop.get_concrete_function()
            yield Compiled()
            costs, norms = train_loop(tf.constant(problem.steps))
            yield Chunk(costs.numpy())
        else:
            if variant == "tensorflow":
                step = tf.function(step)
            norms = []  # eager tensors, read back once at the end
            for i in range(problem.steps):
                # A tensor, not a Python int: tf.function traces a new graph for every new Python value.
                c, n = step(tf.constant(i))
                norms.append(n)
                yield float(c)
            norms = tf.stack(norms)

    return Result(params={k: p.numpy() for k, p in params.items()}, param_norms=norms.numpy().tolist())


def train_v1(problem, device_name):
    v1 = tf.compat.v1
    dtype = tf.as_dtype(problem.precision)
    # A graph of its own rather than tf.compat.v1.disable_eager_execution(), which is process-wide.
    graph = tf.Graph()
    with graph.as_default(), tf.device(device_name):
        x = v1.placeholder(dtype, shape=[problem.samples.shape[1]], name="x")
        learning_rate = v1.placeholder(dtype, shape=[], name="learning_rate")
        params = {k: v1.Variable(v, name=k) for k, v in problem.params.items()}
        c = cost(forward(params, x))
        grads = tf.gradients(c, list(params.values()))
        train_op = tf.group(*[p.assign_sub(learning_rate * g) for p, g in zip(params.values(), grads)])
        with tf.control_dependencies([train_op]):  # the norm of the updated parameters
            n = norm({k: p.read_value() for k, p in params.items()})
        init = v1.global_variables_initializer()
    graph.finalize()

    norms = []
    with v1.Session(graph=graph) as sess:
        sess.run(init)
        for i, sample in enumerate(problem.samples):
            # Session.run hands every fetch back to the host: the norm comes with the cost.
            cost_value, norm_value = sess.run([c, n], feed_dict={x: sample, learning_rate: problem.learning_rate(i)})
            norms.append(norm_value)
            yield float(cost_value)
        final = dict(zip(NAMES, sess.run([params[k] for k in NAMES])))
    return Result(params=final, param_norms=np.asarray(norms, dtype=np.float64).tolist())
