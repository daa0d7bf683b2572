"""The seeds' autograd examples in JAX: gradients are functions of functions (jax.grad, jax.vjp), nothing is
stored on arrays; jax.custom_vjp for the custom ReLU; under jax.jit a data-dependent loop must be
lax.while_loop, which reverse mode cannot differentiate (forward mode, jax.jvp, can)."""

import jax
import jax.numpy as jnp
import optax
from jax import lax

# What the framework documents for a repeated backward (tasks/autograd.py compares the observed values).
ACCUMULATION = (
    "fresh",
    "jax.grad(f) is a function that returns the gradient: 1, 1, 1; no gradient is stored on x, so "
    "accumulating means adding the results yourself"
)

# The gradient check runs in float64 whatever the run's precision; without x64 JAX makes float64 float32.
jax.config.update("jax_enable_x64", True)


def square(x):
    # jax.grad differentiates a function with a scalar output: the sum of the one-element x ** 2
    return jax.value_and_grad(lambda x: jnp.sum(x ** 2))(x)


def accumulate(x):
    grad = jax.grad(jnp.sum)
    # A pure function: each call returns the gradient, nothing accumulates (add the results to accumulate).
    return [grad(x) for _ in range(3)]


def vector_backward(x, upstream):
    y, vjp = jax.vjp(lambda x: x ** 2, x)
    grad, = vjp(upstream)  # the vector-Jacobian product with the given output gradient
    return y, grad


def square_until_10(x):
    y = x
    while y < 10:  # without jit, y holds a concrete value: Python can test it
        y = y ** 2
    return y


def control_flow(x):
    return jax.value_and_grad(lambda x: jnp.sum(square_until_10(x)))(x)


@jax.jit
def control_flow_compiled(x):
    # Under jit, x is an abstract tracer: `while y < 10` would raise a TracerBoolConversionError, so the
    # loop is lax.while_loop. Reverse mode (jax.grad, jax.vjp) cannot run through a while_loop whose trip
    # count is unknown when tracing; forward mode can, and for one input it gives the same derivative.
    def square_until_10(x):
        return lax.while_loop(lambda y: (y < 10).all(), lambda y: y ** 2, x)
    return jax.jvp(square_until_10, (x,), (jnp.ones_like(x),))


def lecture(x, y, z):
    def c_of(x, y):
        a = x * y
        b = a + z
        return jnp.sum(b)
    c, (grad_x, grad_y) = jax.value_and_grad(c_of, argnums=(0, 1))(x, y)
    return c, grad_x, grad_y


backward_calls = 0  # lets the check see that this backward, not JAX's own, ran


@jax.custom_vjp
def my_relu(x):
    return jnp.maximum(x, 0)


def my_relu_forward(x):
    return my_relu(x), x  # the output, and what the backward needs (the residuals)


def my_relu_backward(x, upstream):
    global backward_calls
    backward_calls += 1
    return (upstream * (x > 0),)


my_relu.defvjp(my_relu_forward, my_relu_backward)


def custom_relu(x, upstream):
    calls = backward_calls
    y, vjp = jax.vjp(my_relu, x)
    grad, = vjp(upstream)
    return y, grad, backward_calls - calls


# Gradient check: a 5 -> 7 tanh -> 3 network, mean softmax cross-entropy.

@jax.jit
def loss_of(params, x, y):
    h = jnp.tanh(x @ params["W1"] + params["b1"])
    logits = h @ params["W2"] + params["b2"]
    return optax.losses.softmax_cross_entropy_with_integer_labels(logits, y).mean()


def loss(params, x, y):
    return float(loss_of(params, x, y))


def gradients(params, x, y):
    return jax.grad(loss_of)(params, x, y)
