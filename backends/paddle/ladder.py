"""Lecture 4's ladder in PaddlePaddle 3, every level it has: tensors with the gradients by hand (dygraph);
autograd (stop_gradient=False, backward, the update under paddle.no_grad); a PyLayer of one's own (a ReLU and
its backward); paddle.nn layers with a loss module and the update by hand; paddle.optimizer.SGD; an nn.Layer of
one's own; the high-level API's Model.fit; and Paddle's static graph (paddle.static.data, an Executor running a
Program), its define-then-run mode.

paddle.nn.Linear's weight is (in, out), the lecture's layout: it holds w1 and w2 as they are.
"""

import time

import paddle

from tasks.ladder import Chunk, Result


def tensors(problem, device):
    paddle.set_device("gpu" if device == "gpu" else "cpu")
    paddle.set_default_dtype(problem.precision)  # the layers' weights
    return [paddle.to_tensor(a) for a in (problem.x, problem.y, problem.w1, problem.w2)]


def by_hand(problem, device):
    x, y, w1, w2 = tensors(problem, device)
    learning_rate = problem.lr
    for t in range(problem.steps):
        h = x.matmul(w1)
        h_relu = h.clip(min=0)
        y_pred = h_relu.matmul(w2)
        loss = (y_pred - y).pow(2).sum().item()

        grad_y_pred = 2.0 * (y_pred - y)
        grad_w2 = h_relu.t().matmul(grad_y_pred)
        grad_h_relu = grad_y_pred.matmul(w2.t())
        grad_h = paddle.where(h < 0, paddle.zeros_like(grad_h_relu), grad_h_relu)
        grad_w1 = x.t().matmul(grad_h)

        w1 -= learning_rate * grad_w1
        w2 -= learning_rate * grad_w2
        yield loss
    return Result(w1.numpy(), w2.numpy())


def autograd(problem, device):
    x, y, w1, w2 = tensors(problem, device)
    w1.stop_gradient = False
    w2.stop_gradient = False
    learning_rate = problem.lr
    for t in range(problem.steps):
        y_pred = x.matmul(w1).clip(min=0).matmul(w2)
        loss = (y_pred - y).pow(2).sum()

        loss.backward()

        with paddle.no_grad():
            w1.subtract_(learning_rate * w1.grad)
            w2.subtract_(learning_rate * w2.grad)
            w1.clear_gradient()
            w2.clear_gradient()
        yield loss.item()
    return Result(w1.numpy(), w2.numpy())


def custom_function(problem, device):
    class MyReLU(paddle.autograd.PyLayer):
        @staticmethod
        def forward(ctx, x):
            ctx.save_for_backward(x)
            return x.clip(min=0)

        @staticmethod
        def backward(ctx, grad_y):
            x, = ctx.saved_tensor()
            return paddle.where(x < 0, paddle.zeros_like(grad_y), grad_y)

    def my_relu(x):
        return MyReLU.apply(x)

    x, y, w1, w2 = tensors(problem, device)
    w1.stop_gradient = False
    w2.stop_gradient = False
    learning_rate = problem.lr
    for t in range(problem.steps):
        y_pred = my_relu(x.matmul(w1)).matmul(w2)
        loss = (y_pred - y).pow(2).sum()

        loss.backward()

        with paddle.no_grad():
            w1.subtract_(learning_rate * w1.grad)
            w2.subtract_(learning_rate * w2.grad)
            w1.clear_gradient()
            w2.clear_gradient()
        yield loss.item()
    return Result(w1.numpy(), w2.numpy())


def layers(problem, device):
    x, y, w1, w2 = tensors(problem, device)
    N, D_in, H, D_out = problem.sizes

    model = paddle.nn.Sequential(
        paddle.nn.Linear(D_in, H, bias_attr=False),
        paddle.nn.ReLU(),
        paddle.nn.Linear(H, D_out, bias_attr=False))
    model[0].weight.set_value(w1)
    model[2].weight.set_value(w2)

    loss_fn = paddle.nn.MSELoss(reduction="sum")

    learning_rate = problem.lr
    for t in range(problem.steps):
        y_pred = model(x)
        loss = loss_fn(y_pred, y)

        model.clear_gradients()

        loss.backward()

        with paddle.no_grad():
            for param in model.parameters():
                param.subtract_(learning_rate * param.grad)
        yield loss.item()
    return Result(model[0].weight.numpy(), model[2].weight.numpy())


def optimizer(problem, device):
    x, y, w1, w2 = tensors(problem, device)
    N, D_in, H, D_out = problem.sizes

    model = paddle.nn.Sequential(
        paddle.nn.Linear(D_in, H, bias_attr=False),
        paddle.nn.ReLU(),
        paddle.nn.Linear(H, D_out, bias_attr=False))
    model[0].weight.set_value(w1)
    model[2].weight.set_value(w2)

    loss_fn = paddle.nn.MSELoss(reduction="sum")

    learning_rate = problem.lr
    optimizer = paddle.optimizer.SGD(learning_rate=learning_rate, parameters=model.parameters())

    for t in range(problem.steps):
        y_pred = model(x)
        loss = loss_fn(y_pred, y)
        optimizer.clear_grad()

        loss.backward()

        optimizer.step()
        yield loss.item()
    return Result(model[0].weight.numpy(), model[2].weight.numpy())


def model_class(problem, device):
    class TwoLayerNet(paddle.nn.Layer):
        def __init__(self, D_in, H, D_out):
            super(TwoLayerNet, self).__init__()
            self.linear1 = paddle.nn.Linear(D_in, H, bias_attr=False)
            self.linear2 = paddle.nn.Linear(H, D_out, bias_attr=False)

        def forward(self, x):
            h_relu = self.linear1(x).clip(min=0)
            y_pred = self.linear2(h_relu)
            return y_pred

    x, y, w1, w2 = tensors(problem, device)
    N, D_in, H, D_out = problem.sizes
    model = TwoLayerNet(D_in, H, D_out)
    model.linear1.weight.set_value(w1)
    model.linear2.weight.set_value(w2)
    loss_fn = paddle.nn.MSELoss(reduction="sum")

    optimizer = paddle.optimizer.SGD(learning_rate=problem.lr, parameters=model.parameters())
    for t in range(problem.steps):
        y_pred = model(x)
        loss = loss_fn(y_pred, y)

        optimizer.clear_grad()
        loss.backward()
        optimizer.step()
        yield loss.item()
    return Result(model.linear1.weight.numpy(), model.linear2.weight.numpy())


def fit(problem, device):
    class StepLosses(paddle.callbacks.Callback):
        """Each step's loss and its time inside fit()."""
        def on_train_batch_begin(self, step, logs=None):
            self.began = time.perf_counter()

        def on_train_batch_end(self, step, logs=None):
            seconds.append(time.perf_counter() - self.began)
            losses.append(float(logs["loss"][0]))

    x, y, w1, w2 = tensors(problem, device)
    N, D_in, H, D_out = problem.sizes
    net = paddle.nn.Sequential(
        paddle.nn.Linear(D_in, H, bias_attr=False),
        paddle.nn.ReLU(),
        paddle.nn.Linear(H, D_out, bias_attr=False))
    net[0].weight.set_value(w1)
    net[2].weight.set_value(w2)

    model = paddle.Model(net)
    model.prepare(paddle.optimizer.SGD(learning_rate=problem.lr, parameters=net.parameters()),
                  paddle.nn.MSELoss(reduction="sum"))
    losses, seconds = [], []
    model.fit(paddle.io.TensorDataset([x, y]), batch_size=N, epochs=problem.steps, shuffle=False, verbose=0,
              callbacks=[StepLosses()])
    yield Chunk(losses, step_seconds=seconds)
    return Result(net[0].weight.numpy(), net[2].weight.numpy())


def graph(problem, device):
    paddle.enable_static()
    N, D_in, H, D_out = problem.sizes
    main, startup = paddle.static.Program(), paddle.static.Program()
    with paddle.static.program_guard(main, startup):
        x = paddle.static.data("x", shape=[N, D_in], dtype=problem.precision)
        y = paddle.static.data("y", shape=[N, D_out], dtype=problem.precision)
        w1 = paddle.static.create_parameter([D_in, H], problem.precision,
                                            default_initializer=paddle.nn.initializer.Assign(problem.w1))
        w2 = paddle.static.create_parameter([H, D_out], problem.precision,
                                            default_initializer=paddle.nn.initializer.Assign(problem.w2))

        h = paddle.nn.functional.relu(paddle.matmul(x, w1))
        y_pred = paddle.matmul(h, w2)
        diff = y_pred - y
        loss = paddle.sum(diff ** 2)
        paddle.optimizer.SGD(learning_rate=problem.lr).minimize(loss)

    executor = paddle.static.Executor(paddle.CUDAPlace(0) if device == "gpu" else paddle.CPUPlace())
    executor.run(startup)
    values = {"x": problem.x, "y": problem.y}
    for t in range(problem.steps):
        loss_val, = executor.run(main, feed=values, fetch_list=[loss])
        yield float(loss_val)
    scope = paddle.static.global_scope()
    return Result(*(scope.find_var(w.name).get_tensor().__array__() for w in (w1, w2)))


LEVELS = {"by-hand": by_hand, "autograd": autograd, "custom-function": custom_function, "layers": layers,
          "optimizer": optimizer, "model-class": model_class, "fit": fit, "graph": graph}


def train(problem, device, variant):
    return (yield from LEVELS[problem.recipe.name](problem, device))
