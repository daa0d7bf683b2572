"""The seeds' autograd examples in MXNet: x.attach_grad() allocates x.grad, operations under
autograd.record() are recorded, backward() fills x.grad (overwriting it, or adding into it with
grad_req='add'), and an autograd.Function for the custom ReLU."""

from mxnet import autograd, gluon, nd

# What the framework documents for a repeated backward (tasks/autograd.py compares the observed values).
ACCUMULATION = (
    "accumulates",
    "with x.attach_grad(grad_req='add') each backward adds into x.grad; with the default grad_req='write' "
    "each backward overwrites it (1, 1, 1)"
)


def square(x):
    x.attach_grad()
    with autograd.record():
        y = x ** 2
    y.backward()
    return y, x.grad


def accumulate(x):
    grads = {}
    for grad_req in ("add", "write"):  # 'write', the default, overwrites x.grad at each backward
        x.attach_grad(grad_req=grad_req)
        with autograd.record():
            y = x.sum()
        sequence = grads[f"grad_req='{grad_req}'"] = []
        for _ in range(3):
            y.backward(retain_graph=True)
            sequence.append(x.grad.copy())
    return grads


def vector_backward(x, upstream):
    x.attach_grad()
    with autograd.record():
        y = x ** 2
    y.backward(upstream)  # the gradient of the output: the vector-Jacobian product
    return y, x.grad


def control_flow(x):
    x.attach_grad()
    with autograd.record():
        y = x
        while y < 10:  # imperative: plain Python, autograd records what ran
            y = y ** 2
    y.backward()
    return y, x.grad


def lecture(x, y, z):
    x.attach_grad()
    y.attach_grad()
    with autograd.record():
        a = x * y
        b = a + z
        c = nd.sum(b)
    c.backward()
    return c, x.grad, y.grad


class MyReLU(autograd.Function):
    def __init__(self):
        super().__init__()
        self.backward_calls = 0  # lets the check see that this backward, not MXNet's own, ran

    def forward(self, x):
        self.save_for_backward(x)
        return nd.maximum(x, 0)

    def backward(self, dy):
        self.backward_calls += 1
        x, = self.saved_tensors
        return dy * (x > 0)


def custom_relu(x, upstream):
    relu = MyReLU()  # a Function object is used for one forward and its backward
    x.attach_grad()
    with autograd.record():
        y = relu(x)
    y.backward(upstream)
    # MXNet's engine runs the backward asynchronously, this Python one too: wait for it before counting
    x.grad.wait_to_read()
    return y, x.grad, relu.backward_calls


# Gradient check: a 5 -> 7 tanh -> 3 network, mean softmax cross-entropy.

cross_entropy = gluon.loss.SoftmaxCrossEntropyLoss()  # one loss per sample


def loss_of(params, x, y):
    h = nd.tanh(nd.dot(x, params["W1"]) + params["b1"])
    return cross_entropy(nd.dot(h, params["W2"]) + params["b2"], y).mean()


def loss(params, x, y):
    return loss_of(params, x, y).asscalar()


def gradients(params, x, y):
    for p in params.values():
        p.attach_grad()
    with autograd.record():
        value = loss_of(params, x, y)
    value.backward()
    return {name: p.grad for name, p in params.items()}
