"""Course 1's perceptron in JAX: the parameters are a dict of arrays, the cost a pure function of them,
jax.value_and_grad gives its value and gradient, and the course's update is applied with
jax.tree_util.tree_map. "jax" compiles the step with jax.jit, "jax-nojit" dispatches it op by op, and
"jax-scan" compiles the whole loop into one jax.lax.scan over the samples.
"""

import jax
import jax.numpy as jnp
import numpy as np

from tasks.perceptron import Chunk, Compiled, Result


def forward(params, x):
    y = jax.nn.relu(params["theta1"] @ x + params["bias1"])
    return params["theta2"] @ y + params["bias2"]


def cost(params, x):
    return jnp.sum(forward(params, x)) ** 2


def norm(params):
    return jnp.sqrt(sum(jnp.sum(p * p) for p in params.values()))


def step(params, data, i):
    samples, rates = data
    x, lr = samples[i], rates[i]  # the samples stay on the device; only the step number goes in
    c, grads = jax.value_and_grad(cost)(params, x)
    params = jax.tree_util.tree_map(lambda p, g: p - lr * g, params, grads)
    return params, (c, norm(params))


def train(problem, device, variant):
    # x64 is a process-wide switch read when arrays are made and functions traced: set it both ways.
    jax.config.update("jax_enable_x64", problem.precision == "float64")
    device = jax.devices("gpu" if device == "gpu" else "cpu")[0]
    params = jax.device_put(problem.params, device)
    rates = np.array([problem.learning_rate(i) for i in range(problem.steps)], dtype=problem.precision)
    data = jax.device_put((problem.samples, rates), device)

    if variant == "jax-scan":
        @jax.jit
        def run(params, data):
            return jax.lax.scan(lambda p, i: step(p, data, i), params, jnp.arange(problem.steps))

        # Ahead-of-time: trace and compile now; Compiled() tells the worker that compilation ends here.
        compiled = run.lower(params, data).compile()
        yield Compiled()
        params, (costs, norms) = compiled(params, data)
        yield Chunk(np.asarray(costs, dtype=np.float64))
    else:
        train_step = jax.jit(step) if variant == "jax" else step
        norms = []  # device arrays, read back once at the end
        for i in range(problem.steps):
            # i goes in as a traced argument: jit compiles the step once, not once per step number
            params, (c, n) = train_step(params, data, i)
            norms.append(n)
            yield float(c)
        norms = jnp.stack(norms)

    return Result(params={k: np.array(v) for k, v in params.items()}, param_norms=np.asarray(norms).tolist())
