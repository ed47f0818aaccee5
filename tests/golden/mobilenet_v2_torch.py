"""PyTorch twin of minnow's zoo "mobilenet_v2" for 1x28x28 inputs (src/zoo/mobilenet.cpp).

Parameter names equal minnow's initializer names. Imported by tests/golden/gen_mobilenet_v2.py
(golden files) and bench/torch_train.py (the training peer); importing it has no side effects.
"""
from torch import nn


class ConvBN(nn.Module):
    def __init__(self, cin, cout, kernel, stride=1, groups=1, act=True):
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, kernel, stride, kernel // 2, groups=groups, bias=False)
        self.bn = nn.BatchNorm2d(cout, eps=1e-5, momentum=0.1)
        self.act = act

    def forward(self, x):
        x = self.bn(self.conv(x))
        return nn.functional.relu6(x) if self.act else x


class InvertedResidual(nn.Module):
    def __init__(self, cin, t, cout, stride):
        super().__init__()
        hidden = cin * t
        self.expand = ConvBN(cin, hidden, 1) if t != 1 else None
        self.dw = ConvBN(hidden, hidden, 3, stride, groups=hidden)
        self.project = ConvBN(hidden, cout, 1, act=False)
        self.residual = stride == 1 and cin == cout

    def forward(self, x):
        y = self.expand(x) if self.expand is not None else x
        y = self.project(self.dw(y))
        return x + y if self.residual else y


class MobileNetV2Small(nn.Module):
    def __init__(self, in_channels=1, classes=10):
        super().__init__()
        self.stem = ConvBN(in_channels, 16, 3)
        cin = 16
        self.names = []
        for i, (t, c, s) in enumerate([(1, 16, 1), (6, 24, 2), (6, 24, 1), (6, 32, 2),
                                       (6, 32, 1), (6, 64, 1)]):
            name = "block%d" % (i + 1)
            setattr(self, name, InvertedResidual(cin, t, c, s))
            self.names.append(name)
            cin = c
        self.head = ConvBN(cin, 128, 1)
        self.logits = nn.Linear(128, classes)

    def forward(self, x):
        x = self.stem(x)
        for name in self.names:
            x = getattr(self, name)(x)
        x = self.head(x).mean(dim=(2, 3))
        return self.logits(x)
