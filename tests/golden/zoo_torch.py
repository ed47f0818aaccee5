"""PyTorch equivalents of every minnow zoo model, for independent parameter and MAC counts.

Written from the architecture descriptions in src/zoo/*.cpp (channels, kernels, strides, biases,
BN, SE, activations), built the ordinary PyTorch way. Used by tests/golden/gen_zoo_counts.py;
importing this module has no side effects. mobilenet_v2 at width 1 also exists as
mobilenet_v2_torch.MobileNetV2Small (the golden-test twin); gen_zoo_counts.py checks that both
agree.

Counting conventions (minnow's MacsFn in src/ops/*.cpp, per sample, i.e. batch 1):
  Conv2d              output elements * (Cin / groups) * kh * kw   (bias adds are not MACs)
  Linear              output elements * in_features (on [N, T, D] inputs every position counts)
  LSTM / GRU          one multiply-accumulate per weight per step per direction: each of the
                      T * dirs * H outputs needs G gate rows of W_ih (I wide) and of W_hh (H wide),
                      so T * dirs * H * G * (I + H) with G = 4 (LSTM) or 3 (GRU). Every one of the
                      T steps counts, whatever the sequence lengths (the padded maximum).
  MultiheadAttention  Q, K, V and output projections 4 * T * D^2, scores Q K^T and the weighted
                      sum of V 2 * T^2 * D: 4 T D^2 + 2 T^2 D.
  Embedding (a gather), BatchNorm, LayerNorm, pooling, activations, add/mul/concat: 0.
Parameters: every trainable tensor (BN running statistics are buffers, not parameters).
"""
import math

import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence


def make_divisible(v, divisor=8):
    """torchvision's _make_divisible: nearest multiple of divisor, at least divisor, and never
    more than 10% below v."""
    new_v = max(divisor, int(v + divisor / 2) // divisor * divisor)
    if new_v < 0.9 * v:
        new_v += divisor
    return new_v


def scaled(base, width):
    return make_divisible(base * width)


def stem_stride(h, w):
    # The zoo's CNNs drop the stem's downsampling on inputs under 64 pixels.
    return 2 if min(h, w) >= 64 else 1


class ConvBNAct(nn.Sequential):
    """Conv (square kernel, padding k//2, no bias) -> BatchNorm -> optional activation."""

    def __init__(self, cin, cout, kernel, stride=1, groups=1, act=None):
        layers = [nn.Conv2d(cin, cout, kernel, stride, kernel // 2, groups=groups, bias=False),
                  nn.BatchNorm2d(cout)]
        if act is not None:
            layers.append(act())
        super().__init__(*layers)


class PooledClassifier(nn.Sequential):
    def __init__(self, channels, classes):
        super().__init__(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(channels, classes))


# ---------------------------------------------------------------------------------------------
# LeNet-5 and the MLPs


class LeNet5(nn.Module):
    def __init__(self, in_shape, classes):
        super().__init__()
        c, h, w = in_shape
        self.features = nn.Sequential(
            nn.Conv2d(c, 6, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(6, 16, 5), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten())
        with torch.no_grad():
            flat = self.features(torch.zeros(1, c, h, w)).shape[1]
        self.classifier = nn.Sequential(
            nn.Linear(flat, 120), nn.ReLU(), nn.Linear(120, 84), nn.ReLU(), nn.Linear(84, classes))

    def forward(self, x):
        return self.classifier(self.features(x))


class MLP(nn.Module):
    def __init__(self, in_shape, hidden, classes):
        super().__init__()
        layers = [nn.Flatten()]
        features = math.prod(in_shape)
        for hsize in hidden:
            layers += [nn.Linear(features, hsize), nn.ReLU()]
            features = hsize
        layers.append(nn.Linear(features, classes))
        self.net = nn.Sequential(*layers)

    def forward(self, x):
        return self.net(x)


# ---------------------------------------------------------------------------------------------
# MobileNets


class MobileNetV1(nn.Module):
    def __init__(self, in_shape, classes, width):
        super().__init__()
        c, h, w = in_shape
        cin = scaled(32, width)
        layers = [ConvBNAct(c, cin, 3, stem_stride(h, w), act=nn.ReLU)]
        for out, stride in [(64, 1), (128, 2), (128, 1), (256, 2), (256, 1), (512, 2), (512, 1),
                            (512, 1), (512, 1), (512, 1), (512, 1), (1024, 2), (1024, 1)]:
            cout = scaled(out, width)
            layers += [ConvBNAct(cin, cin, 3, stride, groups=cin, act=nn.ReLU),
                       ConvBNAct(cin, cout, 1, act=nn.ReLU)]
            cin = cout
        self.features = nn.Sequential(*layers)
        self.classifier = PooledClassifier(cin, classes)

    def forward(self, x):
        return self.classifier(self.features(x))


class SqueezeExcite(nn.Module):
    """MobileNetV3 SE: x * hardsigmoid(fc2(relu(fc1(avgpool(x))))), fcs as 1x1 convs."""

    def __init__(self, channels, squeeze):
        super().__init__()
        self.fc1 = nn.Conv2d(channels, squeeze, 1)
        self.fc2 = nn.Conv2d(squeeze, channels, 1)

    def forward(self, x):
        s = nn.functional.adaptive_avg_pool2d(x, 1)
        s = nn.functional.hardsigmoid(self.fc2(nn.functional.relu(self.fc1(s))))
        return x * s


class InvertedResidual(nn.Module):
    def __init__(self, cin, kernel, expanded, cout, stride, act, se_channels=0):
        super().__init__()
        layers = []
        if expanded != cin:
            layers.append(ConvBNAct(cin, expanded, 1, act=act))
        layers.append(ConvBNAct(expanded, expanded, kernel, stride, groups=expanded, act=act))
        if se_channels:
            layers.append(SqueezeExcite(expanded, se_channels))
        layers.append(ConvBNAct(expanded, cout, 1))
        self.block = nn.Sequential(*layers)
        self.residual = stride == 1 and cin == cout

    def forward(self, x):
        y = self.block(x)
        return x + y if self.residual else y


class MobileNetV2(nn.Module):
    def __init__(self, in_shape, classes, width):
        super().__init__()
        c, h, w = in_shape
        cin = scaled(16, width)
        layers = [ConvBNAct(c, cin, 3, stem_stride(h, w), act=nn.ReLU6)]
        for t, out, s in [(1, 16, 1), (6, 24, 2), (6, 24, 1), (6, 32, 2), (6, 32, 1), (6, 64, 1)]:
            cout = scaled(out, width)
            layers.append(InvertedResidual(cin, 3, cin * t, cout, s, nn.ReLU6))
            cin = cout
        head = make_divisible(128 * max(1.0, width))  # widened for width > 1, never narrowed
        layers.append(ConvBNAct(cin, head, 1, act=nn.ReLU6))
        self.features = nn.Sequential(*layers)
        self.classifier = PooledClassifier(head, classes)

    def forward(self, x):
        return self.classifier(self.features(x))


class MobileNetV3Small(nn.Module):
    # (kernel, expanded, out, SE, activation, stride): torchvision's mobilenet_v3_small table.
    SETTINGS = [(3, 16, 16, True, "RE", 2), (3, 72, 24, False, "RE", 2),
                (3, 88, 24, False, "RE", 1), (5, 96, 40, True, "HS", 2),
                (5, 240, 40, True, "HS", 1), (5, 240, 40, True, "HS", 1),
                (5, 120, 48, True, "HS", 1), (5, 144, 48, True, "HS", 1),
                (5, 288, 96, True, "HS", 2), (5, 576, 96, True, "HS", 1),
                (5, 576, 96, True, "HS", 1)]

    def __init__(self, in_shape, classes, width):
        super().__init__()
        c, h, w = in_shape
        cin = scaled(16, width)
        layers = [ConvBNAct(c, cin, 3, stem_stride(h, w), act=nn.Hardswish)]
        for k, exp, out, se, act, s in self.SETTINGS:
            expanded, cout = scaled(exp, width), scaled(out, width)
            layers.append(InvertedResidual(cin, k, expanded, cout, s,
                                           nn.ReLU if act == "RE" else nn.Hardswish,
                                           make_divisible(expanded // 4) if se else 0))
            cin = cout
        layers.append(ConvBNAct(cin, 6 * cin, 1, act=nn.Hardswish))
        self.features = nn.Sequential(*layers)
        last = scaled(1024, width)
        self.classifier = nn.Sequential(
            nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(6 * cin, last), nn.Hardswish(),
            nn.Linear(last, classes))

    def forward(self, x):
        return self.classifier(self.features(x))


# ---------------------------------------------------------------------------------------------
# SqueezeNet 1.1, ShuffleNetV2, ResNet-8, DS-CNN


class Fire(nn.Module):
    def __init__(self, cin, squeeze, expand):
        super().__init__()
        self.squeeze = nn.Conv2d(cin, squeeze, 1)
        self.expand1x1 = nn.Conv2d(squeeze, expand, 1)
        self.expand3x3 = nn.Conv2d(squeeze, expand, 3, padding=1)

    def forward(self, x):
        s = torch.relu(self.squeeze(x))
        return torch.cat([torch.relu(self.expand1x1(s)), torch.relu(self.expand3x3(s))], 1)


class SqueezeNet(nn.Module):
    def __init__(self, in_shape, classes, width):
        super().__init__()
        c, h, w = in_shape
        stem = scaled(64, width)
        layers = [nn.Conv2d(c, stem, 3, stem_stride(h, w), 1), nn.ReLU(),
                  nn.MaxPool2d(3, 2, 1)]
        cin = stem
        plan = [(16, 64), (16, 64), "pool", (32, 128), (32, 128), "pool", (48, 192), (48, 192),
                (64, 256), (64, 256)]
        for p in plan:
            if p == "pool":
                layers.append(nn.MaxPool2d(3, 2, 1))
                continue
            squeeze, expand = scaled(p[0], width), scaled(p[1], width)
            layers.append(Fire(cin, squeeze, expand))
            cin = 2 * expand
        self.features = nn.Sequential(*layers)
        self.classifier = nn.Sequential(nn.Conv2d(cin, classes, 1), nn.ReLU(),
                                        nn.AdaptiveAvgPool2d(1), nn.Flatten())

    def forward(self, x):
        return self.classifier(self.features(x))


def channel_shuffle(x, groups):
    n, c, h, w = x.shape
    return x.view(n, groups, c // groups, h, w).transpose(1, 2).reshape(n, c, h, w)


class ShuffleUnit(nn.Module):
    def __init__(self, cin, cout, stride):
        super().__init__()
        half = cout // 2
        self.stride = stride
        if stride > 1:
            self.branch1 = nn.Sequential(ConvBNAct(cin, cin, 3, stride, groups=cin),
                                         ConvBNAct(cin, half, 1, act=nn.ReLU))
            b2_in = cin
        else:
            b2_in = cin // 2
        self.branch2 = nn.Sequential(ConvBNAct(b2_in, half, 1, act=nn.ReLU),
                                     ConvBNAct(half, half, 3, stride, groups=half),
                                     ConvBNAct(half, half, 1, act=nn.ReLU))

    def forward(self, x):
        if self.stride == 1:
            x1, x2 = x.chunk(2, dim=1)
            y = torch.cat([x1, self.branch2(x2)], 1)
        else:
            y = torch.cat([self.branch1(x), self.branch2(x)], 1)
        return channel_shuffle(y, 2)


class ShuffleNetV2(nn.Module):
    def __init__(self, in_shape, classes, width):
        super().__init__()
        c, h, w = in_shape
        s = stem_stride(h, w)
        layers = [ConvBNAct(c, 24, 3, s, act=nn.ReLU)]  # the stem is not scaled
        if s > 1:
            layers.append(nn.MaxPool2d(3, 2, 1))
        cin = 24
        for repeats, channels in [(4, 48), (8, 96), (4, 192)]:
            cout = scaled(channels, width)
            for u in range(repeats):
                layers.append(ShuffleUnit(cin, cout, 2 if u == 0 else 1))
                cin = cout
        last = make_divisible(1024 * max(1.0, width))
        layers.append(ConvBNAct(cin, last, 1, act=nn.ReLU))
        self.features = nn.Sequential(*layers)
        self.classifier = PooledClassifier(last, classes)

    def forward(self, x):
        return self.classifier(self.features(x))


class ResidualStack(nn.Module):
    def __init__(self, cin, filters, stride):
        super().__init__()
        # Keras-style: the convs keep their biases although BN follows.
        self.a = nn.Sequential(nn.Conv2d(cin, filters, 3, stride, 1), nn.BatchNorm2d(filters),
                               nn.ReLU())
        self.b = nn.Sequential(nn.Conv2d(filters, filters, 3, 1, 1), nn.BatchNorm2d(filters))
        self.shortcut = (nn.Conv2d(cin, filters, 1, stride)
                         if stride != 1 or cin != filters else nn.Identity())

    def forward(self, x):
        return torch.relu(self.shortcut(x) + self.b(self.a(x)))


class ResNet8(nn.Module):
    def __init__(self, in_shape, classes, width):
        super().__init__()
        c = in_shape[0]
        f1, f2, f3 = scaled(16, width), scaled(32, width), scaled(64, width)
        self.features = nn.Sequential(
            nn.Conv2d(c, f1, 3, 1, 1), nn.BatchNorm2d(f1), nn.ReLU(),
            ResidualStack(f1, f1, 1), ResidualStack(f1, f2, 2), ResidualStack(f2, f3, 2))
        self.classifier = PooledClassifier(f3, classes)

    def forward(self, x):
        return self.classifier(self.features(x))


def keras_same_pads(size, kernel, stride):
    """(before, after) padding of TensorFlow's "same": output ceil(size / stride), the odd pixel
    after."""
    out = -(-size // stride)
    total = max((out - 1) * stride + kernel - size, 0)
    return total // 2, total - total // 2


class DSCNN(nn.Module):
    def __init__(self, in_shape, classes, width):
        super().__init__()
        c, h, w = in_shape
        ch = scaled(64, width)
        top, bottom = keras_same_pads(h, 10, 2)
        left, right = keras_same_pads(w, 4, 2)
        layers = [nn.ZeroPad2d((left, right, top, bottom)), nn.Conv2d(c, ch, (10, 4), 2),
                  nn.BatchNorm2d(ch), nn.ReLU()]
        for _ in range(4):
            layers += [nn.Conv2d(ch, ch, 3, 1, 1, groups=ch), nn.BatchNorm2d(ch), nn.ReLU(),
                       nn.Conv2d(ch, ch, 1), nn.BatchNorm2d(ch), nn.ReLU()]
        self.features = nn.Sequential(*layers)
        self.classifier = PooledClassifier(ch, classes)

    def forward(self, x):
        return self.classifier(self.features(x))


# ---------------------------------------------------------------------------------------------
# Text classifiers: input token ids [N, T] and lengths [N]

EMBED_DIM = 64
HIDDEN = 64


class RecurrentClassifier(nn.Module):
    """Embedding -> bidirectional LSTM/GRU over the packed sequence -> [final states of both
    directions, mean of the outputs over the T positions] -> Linear."""

    def __init__(self, vocab, max_len, classes, cell):
        super().__init__()
        self.max_len = max_len
        self.embedding = nn.Embedding(vocab, EMBED_DIM)
        self.rnn = cell(EMBED_DIM, HIDDEN, batch_first=True, bidirectional=True)
        self.logits = nn.Linear(4 * HIDDEN, classes)

    def forward(self, ids, lengths):
        x = pack_padded_sequence(self.embedding(ids), lengths, batch_first=True,
                                 enforce_sorted=False)
        out, h = self.rnn(x)
        if isinstance(h, tuple):  # LSTM: (h_n, c_n)
            h = h[0]
        out, _ = pad_packed_sequence(out, batch_first=True, total_length=self.max_len)
        final = torch.cat([h[0], h[1]], dim=1)
        return self.logits(torch.cat([final, out.sum(dim=1) / self.max_len], dim=1))


class TransformerClassifier(nn.Module):
    """Embedding + learned positions -> 2 post-norm encoder layers (4 heads, FF 128, ReLU,
    padding mask) -> mean over the T positions -> Linear."""

    def __init__(self, vocab, max_len, classes):
        super().__init__()
        self.embedding = nn.Embedding(vocab, EMBED_DIM)
        self.position = nn.Parameter(torch.zeros(1, max_len, EMBED_DIM))
        layer = nn.TransformerEncoderLayer(EMBED_DIM, 4, 128, dropout=0.0, batch_first=True)
        self.encoder = nn.TransformerEncoder(layer, 2, enable_nested_tensor=False)
        self.logits = nn.Linear(EMBED_DIM, classes)

    def forward(self, ids, lengths):
        t = ids.shape[1]
        pad = torch.arange(t)[None, :] >= lengths[:, None]
        x = self.encoder(self.embedding(ids) + self.position, src_key_padding_mask=pad)
        return self.logits(x.mean(dim=1))


# ---------------------------------------------------------------------------------------------
# Construction and counting

IMAGE_MODELS = {
    "lenet5": lambda shape, classes, width, hidden: LeNet5(shape, classes),
    "lenet300": lambda shape, classes, width, hidden: MLP(shape, (300, 100), classes),
    "mlp": lambda shape, classes, width, hidden: MLP(shape, hidden or (256, 128), classes),
    "mobilenet_v1": lambda shape, classes, width, hidden: MobileNetV1(shape, classes, width),
    "mobilenet_v2": lambda shape, classes, width, hidden: MobileNetV2(shape, classes, width),
    "mobilenet_v3_small":
        lambda shape, classes, width, hidden: MobileNetV3Small(shape, classes, width),
    "squeezenet": lambda shape, classes, width, hidden: SqueezeNet(shape, classes, width),
    "shufflenet_v2": lambda shape, classes, width, hidden: ShuffleNetV2(shape, classes, width),
    "resnet8": lambda shape, classes, width, hidden: ResNet8(shape, classes, width),
    "ds_cnn": lambda shape, classes, width, hidden: DSCNN(shape, classes, width),
}

TEXT_MODELS = {
    "lstm_classifier": lambda vocab, t, classes: RecurrentClassifier(vocab, t, classes, nn.LSTM),
    "gru_classifier": lambda vocab, t, classes: RecurrentClassifier(vocab, t, classes, nn.GRU),
    "transformer_classifier": TransformerClassifier,
}


def build(name, input_shape, classes, width=1.0, hidden=None, vocab_size=20000):
    if name in TEXT_MODELS:
        (max_len,) = input_shape
        return TEXT_MODELS[name](vocab_size, max_len, classes)
    return IMAGE_MODELS[name](tuple(input_shape), classes, width, hidden)


def count_params(model):
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


def _module_macs(module, inputs, output):
    """MACs of one call for batch 1, in minnow's convention (see the module docstring)."""
    if isinstance(module, nn.Conv2d):
        kh, kw = module.kernel_size
        return output.numel() * (module.in_channels // module.groups) * kh * kw
    if isinstance(module, nn.Linear):
        return output.numel() * module.in_features
    if isinstance(module, (nn.LSTM, nn.GRU)):
        x = inputs[0]
        steps = len(x.batch_sizes) if hasattr(x, "batch_sizes") else x.shape[1]
        gates = 4 if isinstance(module, nn.LSTM) else 3
        dirs = 2 if module.bidirectional else 1
        h, i = module.hidden_size, module.input_size
        return steps * dirs * h * gates * (i + h)
    if isinstance(module, nn.MultiheadAttention):
        t, d = inputs[0].shape[1], module.embed_dim  # batch_first
        return 4 * t * d * d + 2 * t * t * d
    return 0


def _counted(model):
    """Modules whose calls carry MACs. MultiheadAttention's out_proj is a Linear applied
    functionally inside the attention, already part of the attention's count."""
    inside_mha = set()
    for m in model.modules():
        if isinstance(m, nn.MultiheadAttention):
            inside_mha.update(id(c) for c in m.modules() if c is not m)
    return [m for m in model.modules()
            if isinstance(m, (nn.Conv2d, nn.Linear, nn.LSTM, nn.GRU, nn.MultiheadAttention))
            and id(m) not in inside_mha]


def count_macs(model, sample_inputs):
    """Runs one forward pass on batch-1 inputs with hooks on the MAC-carrying modules; checks that
    every one of them ran exactly once (so the count covers the whole model) and returns
    (total MACs, output)."""
    counted = _counted(model)
    calls = {id(m): 0 for m in counted}
    total = [0]

    def hook(module, inputs, output):
        calls[id(module)] += 1
        out = output[0] if isinstance(output, tuple) else output
        total[0] += _module_macs(module, inputs, out)

    handles = [m.register_forward_hook(hook) for m in counted]
    try:
        # Eval mode with autograd on: BatchNorm works at batch 1 on 1x1 maps, and PyTorch's
        # inference fast paths (TransformerEncoderLayer, MultiheadAttention), which skip the
        # submodule calls the hooks count, stay off because the weights require grad.
        model.eval()
        out = model(*sample_inputs)
    finally:
        for h in handles:
            h.remove()
    missed = [type(m).__name__ for m in counted if calls[id(m)] != 1]
    if missed:
        raise AssertionError("modules not called exactly once: %s" % missed)
    return total[0], out


def sample_inputs(name, input_shape, vocab_size=20000):
    """Batch-1 inputs for a forward pass (text: ids below vocab_size, every sequence full)."""
    if name in TEXT_MODELS:
        (t,) = input_shape
        g = torch.Generator().manual_seed(0)
        return (torch.randint(0, vocab_size, (1, t), generator=g), torch.tensor([t]))
    return (torch.randn(1, *input_shape),)
