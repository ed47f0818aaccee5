#!/usr/bin/python3
"""Writes tests/golden/zoo_counts.json: parameter and MAC counts of every zoo model from its
PyTorch twin (tests/golden/zoo_torch.py), read by tests/zoo/test_zoo_counts.cpp.

Run with Debian's python3-torch (1.13):  /usr/bin/python3 tests/golden/gen_zoo_counts.py

Every configuration runs one real forward pass of the twin on a batch-1 input of that shape (the
independent check that the layer shapes work out); MACs come from forward hooks in minnow's
convention (see zoo_torch.py). A configuration whose forward pass fails in PyTorch (the input is
too small for the architecture) is written as an "error" entry: minnow must refuse it too.
Shapes under the minimum sizes the zoo documents (src/zoo/*.cpp image_input calls) are left out,
since there minnow refuses by design inputs that PyTorch would still run.

Further checks before anything is written: mobilenet_v2 at width 1 counts the same with the
golden-test twin (mobilenet_v2_torch.py) and gives the pinned 70,250 params / 6,904,400 MACs at
1x28x28; the models that follow a published architecture match its published counts (PUBLISHED).

Entry fields: model, input_shape, classes, width, [hidden] (mlp), [vocab_size] (text models),
then params and macs, or error.
"""
import json
import os
import sys

import torch

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import zoo_torch  # noqa: E402
from mobilenet_v2_torch import MobileNetV2Small  # noqa: E402

torch.set_num_threads(1)
torch.manual_seed(0)

# The smallest H, W each CNN's builder accepts (src/zoo/*.cpp). The LeNets and MLPs take any size.
MIN_HW = {"mobilenet_v1": (16, 16), "mobilenet_v2": (8, 8), "mobilenet_v3_small": (16, 16),
          "squeezenet": (8, 8), "shufflenet_v2": (8, 8), "resnet8": (4, 4), "ds_cnn": (10, 4)}
WIDTH_MODELS = set(MIN_HW)

# MNIST, CIFAR, 64 px (stride-2 stems), odd sizes, KWS MFCC frames, and the minimum size.
SHAPES = [[1, 28, 28], [3, 32, 32], [3, 64, 64], [3, 37, 45], [1, 49, 10], [1, 8, 8]]


def image_configs():
    for name in zoo_torch.IMAGE_MODELS:
        min_h, min_w = MIN_HW.get(name, (1, 1))
        for shape in SHAPES:
            if shape[1] < min_h or shape[2] < min_w:
                continue
            for classes in (10, 100):
                widths = (1.0, 0.5) if name in WIDTH_MODELS or shape == [3, 32, 32] else (1.0,)
                for width in widths:
                    yield {"model": name, "input_shape": shape, "classes": classes,
                           "width": width}
        # Widths that exercise the rounding to multiples of 8 and the heads widened above 1.
        if name in WIDTH_MODELS:
            for width in (0.25, 0.75, 1.5):
                yield {"model": name, "input_shape": [3, 32, 32], "classes": 7, "width": width}
    # ImageNet size (stride-2 stems) for the models with published ImageNet counts, and KWS.
    for name in ("mobilenet_v1", "mobilenet_v3_small", "squeezenet", "shufflenet_v2"):
        yield {"model": name, "input_shape": [3, 224, 224], "classes": 1000, "width": 1.0}
    yield {"model": "ds_cnn", "input_shape": [1, 49, 10], "classes": 12, "width": 1.0}
    for hidden in ([512], [64, 32, 16]):
        yield {"model": "mlp", "input_shape": [1, 28, 28], "classes": 10, "width": 1.0,
               "hidden": hidden}


def text_configs():
    for name in zoo_torch.TEXT_MODELS:
        for max_len in (16, 64, 200):
            for vocab, classes in ((20000, 2), (5000, 5)):
                yield {"model": name, "input_shape": [max_len], "classes": classes,
                       "width": 1.0, "vocab_size": vocab}
        yield {"model": name, "input_shape": [1], "classes": 3, "width": 1.0, "vocab_size": 3}


def count(cfg):
    name, shape = cfg["model"], cfg["input_shape"]
    vocab = cfg.get("vocab_size", 20000)
    model = zoo_torch.build(name, shape, cfg["classes"], cfg["width"], cfg.get("hidden"), vocab)
    macs, out = zoo_torch.count_macs(model, zoo_torch.sample_inputs(name, shape, vocab))
    if tuple(out.shape) != (1, cfg["classes"]):
        raise AssertionError("%s: output %s" % (cfg, tuple(out.shape)))
    return zoo_torch.count_params(model), macs


# Published counts of the architectures the zoo follows, an anchor outside this script and minnow:
# (model, input shape, classes) -> (params, MACs or None, MAC tolerance, source).
PUBLISHED = {
    ("lenet5", (1, 28, 28), 10): (61706, None, 0, "LeNet-5 with padded first conv"),
    ("lenet300", (1, 28, 28), 10): (266610, None, 0, "LeNet-300-100, 784*300+300*100+100*10+410"),
    ("mobilenet_v1", (3, 224, 224), 1000):
        (4231976, 569e6, 0.001, "MobileNet paper: 569M mult-adds; Keras trainable params"),
    ("mobilenet_v3_small", (3, 224, 224), 1000):
        (2542856, 0.06e9, 0.1, "torchvision mobilenet_v3_small: 2,542,856 params, 0.06 GFLOPS"),
    ("squeezenet", (3, 224, 224), 1000):
        # MACs differ from torchvision by design: padded stem and pools instead of ceil_mode.
        (1235496, None, 0, "torchvision squeezenet1_1: 1,235,496 params"),
    ("shufflenet_v2", (3, 224, 224), 1000):
        (1366792, 0.04e9, 0.1, "torchvision shufflenet_v2_x0_5: 1,366,792 params, 0.04 GFLOPS"),
    ("resnet8", (3, 32, 32), 10):
        (78186, None, 0, "MLPerf Tiny ResNet-8: 78,666 Keras params minus 480 BN statistics"),
    ("ds_cnn", (1, 49, 10), 12):
        (23756, None, 0, "MLPerf Tiny DS-CNN: 24,908 Keras params minus 1,152 BN statistics"),
}


def check_published(cfg, params, macs):
    key = (cfg["model"], tuple(cfg["input_shape"]), cfg["classes"])
    if key not in PUBLISHED or cfg["width"] != 1.0 or "hidden" in cfg:
        return False
    want_params, want_macs, tol, source = PUBLISHED[key]
    if params != want_params or (want_macs and abs(macs - want_macs) > tol * want_macs):
        raise AssertionError("%s: %d params, %d MACs; %s" % (cfg, params, macs, source))
    return True


def check_against_mobilenet_v2_twin(cfg, params, macs):
    """mobilenet_v2_torch.MobileNetV2Small (width 1, stride-1 stem) must count the same."""
    shape = cfg["input_shape"]
    if cfg["model"] != "mobilenet_v2" or cfg["width"] != 1.0 or min(shape[1:]) >= 64:
        return
    twin = MobileNetV2Small(shape[0], cfg["classes"])
    twin_macs, _ = zoo_torch.count_macs(twin, zoo_torch.sample_inputs("mobilenet_v2", shape))
    got = (zoo_torch.count_params(twin), twin_macs)
    if got != (params, macs):
        raise AssertionError("%s: zoo_torch %s, mobilenet_v2_torch %s" % (cfg, (params, macs), got))


def main():
    entries = []
    published = 0
    for cfg in list(image_configs()) + list(text_configs()):
        try:
            params, macs = count(cfg)
        except RuntimeError as e:  # PyTorch: the input is too small for a conv or pool
            entries.append(dict(cfg, error=str(e).splitlines()[0]))
            print("%s %s error: %s" % (cfg["model"], cfg["input_shape"], entries[-1]["error"]))
            continue
        check_against_mobilenet_v2_twin(cfg, params, macs)
        published += check_published(cfg, params, macs)
        entries.append(dict(cfg, params=params, macs=macs))
    if published != len(PUBLISHED):
        raise AssertionError("only %d of %d published counts checked" % (published, len(PUBLISHED)))
    pinned = [e for e in entries if e["model"] == "mobilenet_v2" and e["input_shape"] == [1, 28, 28]
              and e["classes"] == 10 and e["width"] == 1.0]
    if [(e["params"], e["macs"]) for e in pinned] != [(70250, 6904400)]:
        raise AssertionError("mobilenet_v2 1x28x28: %s, pinned 70,250 / 6,904,400" % pinned)
    path = os.path.join(HERE, "zoo_counts.json")
    with open(path + ".tmp", "w") as f:
        f.write('{"generator": "tests/golden/gen_zoo_counts.py", "torch": "%s",\n' %
                torch.__version__)
        f.write(' "entries": [\n')
        f.write(",\n".join("  " + json.dumps(e) for e in entries))
        f.write("\n]}\n")
    os.replace(path + ".tmp", path)
    print("%d entries (%d errors) -> %s" % (len(entries), sum("error" in e for e in entries), path))


if __name__ == "__main__":
    main()
