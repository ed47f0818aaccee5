#!/usr/bin/env node
// ONNX Runtime side of minnow's peer comparison (bench/onnx_peer.py, docs/onnx.md).
//
//   node bench/ort_bench.js MODEL.onnx [--batch B] [--threads T] [--iters N] [--warmup W]
//        [--shape D1,D2,...] [--no-identity] [--report-json FILE]
//   node bench/ort_bench.js MODEL.onnx --check INPUT.npy EXPECTED.npy [--threads T]
//
// Benchmark mode times session.run() on a fixed random float32 input of the model's input shape
// with batch B (the shape comes from the session's input metadata; --shape gives the dimensions
// after the batch when the file leaves them symbolic). It then times an Identity model over an
// input of the same shape the same way: what that costs is the node binding's own per-call price
// (JS -> native, tensor wrapping, the output copy, the promise), which minnow's C++ loop never
// pays, so the driver subtracts it from ORT's batch-1 latency. The Identity model is encoded here
// as ONNX protobuf bytes (a few fields; no python or onnx package needed).
//
// Check mode runs the model once on INPUT.npy and compares with EXPECTED.npy (|d| <= 1e-4 +
// 1e-4 |expected|): it confirms that the golden files of tests/golden/gen_onnx_golden.py are
// what ONNX Runtime computes too.
//
// Output: one JSON object on stdout (and in --report-json FILE), key names as in
// `minnow bench --report-json`.
'use strict';

const fs = require('fs');
const path = require('path');

function loadOrt() {
  try {
    return require('onnxruntime-node');
  } catch (e) {
    // Run from anywhere: fall back to the repository's node_modules.
    return require(path.join(__dirname, '..', 'node_modules', 'onnxruntime-node'));
  }
}

function fail(message) {
  process.stderr.write(`ort_bench: error: ${message}\n`);
  process.exit(2);
}

function parseArgs(argv) {
  const a = {batch: 1, threads: 1, iters: 100, warmup: 10, shape: null, identity: true,
             report: null, check: null, model: null};
  const positiveInt = (flag, v) => {
    const n = Number(v);
    if (!Number.isInteger(n) || n < 0 || (flag !== '--warmup' && n < 1)) {
      fail(`${flag} expects a ${flag === '--warmup' ? 'non-negative' : 'positive'} integer, got '${v}'`);
    }
    return n;
  };
  for (let i = 0; i < argv.length; ++i) {
    const arg = argv[i];
    const value = () => {
      if (i + 1 >= argv.length) fail(`${arg} needs a value`);
      return argv[++i];
    };
    switch (arg) {
      case '--batch': a.batch = positiveInt(arg, value()); break;
      case '--threads': a.threads = positiveInt(arg, value()); break;
      case '--iters': a.iters = positiveInt(arg, value()); break;
      case '--warmup': a.warmup = positiveInt(arg, value()); break;
      case '--shape':
        a.shape = value().split(',').map((d) => positiveInt('--shape', d));
        break;
      case '--no-identity': a.identity = false; break;
      case '--report-json': a.report = value(); break;
      case '--check': a.check = [value(), value()]; break;
      case '-h':
      case '--help':
        process.stdout.write(fs.readFileSync(__filename, 'utf8').split('\n').slice(1, 20)
                                 .map((l) => l.replace(/^\/\/ ?/, '')).join('\n') + '\n');
        process.exit(0);
      default:
        if (arg.startsWith('-') || a.model) fail(`unexpected argument '${arg}'`);
        a.model = arg;
    }
  }
  if (!a.model) fail('no model file given (usage: ort_bench.js MODEL.onnx [--batch B] ...)');
  if (!fs.existsSync(a.model)) fail(`model file '${a.model}' does not exist`);
  return a;
}

// --- a tiny protobuf writer, enough for an ONNX ModelProto with one Identity node -------------

function varint(n) {
  const out = [];
  let v = BigInt(n);
  do {
    let byte = Number(v & 0x7fn);
    v >>= 7n;
    if (v) byte |= 0x80;
    out.push(byte);
  } while (v);
  return Buffer.from(out);
}
const key = (field, wire) => varint((field << 3) | wire);
const intField = (field, n) => Buffer.concat([key(field, 0), varint(n)]);
const bytesField = (field, bytes) => {
  const b = typeof bytes === 'string' ? Buffer.from(bytes, 'utf8') : bytes;
  return Buffer.concat([key(field, 2), varint(b.length), b]);
};

// ValueInfoProto for a float tensor; dims are numbers or strings (dim_param).
function valueInfo(name, dims) {
  const dimBytes = dims.map((d) => bytesField(1, typeof d === 'string' ? bytesField(2, d)
                                                                     : intField(1, d)));
  const shape = Buffer.concat(dimBytes);
  const tensorType = Buffer.concat([intField(1, 1 /* FLOAT */), bytesField(2, shape)]);
  const type = bytesField(1, tensorType);
  return Buffer.concat([bytesField(1, name), bytesField(2, type)]);
}

// ModelProto: ir_version 7, opset 13, graph { Identity(x) -> y }, batch dimension "N".
function identityModel(sampleDims) {
  const dims = ['N', ...sampleDims];
  const node = Buffer.concat([bytesField(1, 'x'), bytesField(2, 'y'), bytesField(4, 'Identity')]);
  const graph = Buffer.concat([bytesField(1, node), bytesField(2, 'identity'),
                               bytesField(11, valueInfo('x', dims)),
                               bytesField(12, valueInfo('y', dims))]);
  const opset = Buffer.concat([bytesField(1, ''), intField(2, 13)]);
  return new Uint8Array(Buffer.concat([intField(1, 7), bytesField(2, 'minnow ort_bench'),
                                       bytesField(7, graph), bytesField(8, opset)]));
}

// --- .npy (float32, little-endian, C order) -----------------------------------------------------

function readNpy(file) {
  const buf = fs.readFileSync(file);
  if (buf.length < 10 || buf.toString('latin1', 1, 6) !== 'NUMPY') fail(`${file}: not a .npy file`);
  const major = buf[6];
  const headerLen = major === 1 ? buf.readUInt16LE(8) : buf.readUInt32LE(8);
  const start = (major === 1 ? 10 : 12) + headerLen;
  const header = buf.toString('latin1', major === 1 ? 10 : 12, start);
  if (!/'descr':\s*'<f4'/.test(header)) fail(`${file}: expected float32 ('<f4') data`);
  if (/'fortran_order':\s*True/.test(header)) fail(`${file}: fortran_order arrays unsupported`);
  const m = /'shape':\s*\(([^)]*)\)/.exec(header);
  if (!m) fail(`${file}: no shape in header`);
  const shape = m[1].split(',').map((s) => s.trim()).filter((s) => s).map(Number);
  const count = shape.reduce((p, d) => p * d, 1);
  if (buf.length - start !== 4 * count) fail(`${file}: data size does not match shape ${shape}`);
  const data = new Float32Array(count);
  for (let i = 0; i < count; ++i) data[i] = buf.readFloatLE(start + 4 * i);
  return {shape, data};
}

// --- timing -----------------------------------------------------------------------------------

// Nearest-rank percentile, as minnow's benchmark_session computes it.
function percentile(sorted, p) {
  const rank = Math.max(1, Math.ceil((p / 100) * sorted.length));
  return sorted[rank - 1];
}

async function timeRuns(session, feeds, warmup, iters, batch) {
  for (let i = 0; i < warmup; ++i) await session.run(feeds);
  const ms = [];
  for (let i = 0; i < iters; ++i) {
    const t0 = process.hrtime.bigint();
    await session.run(feeds);
    ms.push(Number(process.hrtime.bigint() - t0) / 1e6);
  }
  const sorted = [...ms].sort((x, y) => x - y);
  const mean = ms.reduce((s, v) => s + v, 0) / ms.length;
  return {
    latency_ms_p50: percentile(sorted, 50),
    latency_ms_p90: percentile(sorted, 90),
    latency_ms_p99: percentile(sorted, 99),
    latency_ms_mean: mean,
    latency_ms_min: sorted[0],
    samples_per_s: (batch * 1000) / mean,
  };
}

function sessionOptions(threads) {
  return {
    intraOpNumThreads: threads,
    interOpNumThreads: 1,
    graphOptimizationLevel: 'all',
    executionMode: 'sequential',
  };
}

// Dimensions after the batch: from the metadata, else --shape.
function sampleDims(session, args) {
  const meta = session.inputMetadata ? session.inputMetadata[0] : null;
  const fromMeta = meta && meta.isTensor ? meta.shape.slice(1) : null;
  if (args.shape) {
    if (fromMeta && fromMeta.every((d) => typeof d === 'number') &&
        fromMeta.join(',') !== args.shape.join(',')) {
      fail(`--shape ${args.shape} does not match the model input ${meta.name} [N,${fromMeta}]`);
    }
    return args.shape;
  }
  if (!fromMeta || !fromMeta.every((d) => typeof d === 'number' && d > 0)) {
    fail(`the input dimensions of ${args.model} after the batch are not all fixed ` +
         `(${fromMeta ? fromMeta.join(',') : 'no metadata'}); give them with --shape`);
  }
  return fromMeta;
}

// Deterministic uniform [-1, 1) values (xorshift32), like minnow's synthetic inputs.
function randomInput(count, seed) {
  const data = new Float32Array(count);
  let s = seed >>> 0 || 1;
  for (let i = 0; i < count; ++i) {
    s ^= s << 13; s >>>= 0;
    s ^= s >>> 17;
    s ^= s << 5; s >>>= 0;
    data[i] = (s / 4294967296) * 2 - 1;
  }
  return data;
}

function writeReport(args, report) {
  const text = JSON.stringify(report, null, 1);
  process.stdout.write(text + '\n');
  if (args.report) {
    // Written to a temporary name and renamed: never a half-written report.
    const tmp = `${args.report}.tmp${process.pid}`;
    fs.writeFileSync(tmp, text + '\n');
    fs.renameSync(tmp, args.report);
  }
}

async function check(ort, args) {
  const session = await ort.InferenceSession.create(args.model, sessionOptions(args.threads));
  const x = readNpy(args.check[0]);
  const want = readNpy(args.check[1]);
  const feeds = {[session.inputNames[0]]: new ort.Tensor('float32', x.data, x.shape)};
  const got = (await session.run(feeds))[session.outputNames[0]];
  if (got.dims.join(',') !== want.shape.join(',')) {
    fail(`output shape [${got.dims}] differs from ${args.check[1]} [${want.shape}]`);
  }
  let worstAbs = 0, worstRatio = 0, bad = 0;
  for (let i = 0; i < want.data.length; ++i) {
    const err = Math.abs(got.data[i] - want.data[i]);
    const tol = 1e-4 * (1 + Math.abs(want.data[i]));
    worstAbs = Math.max(worstAbs, err);
    worstRatio = Math.max(worstRatio, err / tol);
    if (!(err <= tol)) ++bad;
  }
  writeReport(args, {model: args.model, values: want.data.length, max_abs_error: worstAbs,
                     worst_error_of_tolerance: worstRatio, mismatches: bad});
  process.exitCode = bad ? 1 : 0;
}

async function bench(ort, args) {
  const rssBefore = process.resourceUsage().maxRSS * 1024;
  const session = await ort.InferenceSession.create(args.model, sessionOptions(args.threads));
  const dims = sampleDims(session, args);
  const shape = [args.batch, ...dims];
  const count = shape.reduce((p, d) => p * d, 1);
  const input = new ort.Tensor('float32', randomInput(count, 12345), shape);
  const model = await timeRuns(session, {[session.inputNames[0]]: input}, args.warmup, args.iters,
                               args.batch);
  // The model's peak, before the identity session adds its own (small) buffers.
  const peakRss = process.resourceUsage().maxRSS * 1024;

  const report = {
    runtime: 'onnxruntime-node ' + (ort.env.versions ? ort.env.versions.node : '?'),
    model: args.model,
    batch: args.batch,
    threads: args.threads,
    iters: args.iters,
    warmup: args.warmup,
    input_shape: shape,
    ...model,
    file_bytes: fs.statSync(args.model).size,
    peak_rss_bytes: peakRss,
    node_baseline_rss_bytes: rssBefore,
  };
  if (args.identity) {
    const idSession = await ort.InferenceSession.create(identityModel(dims),
                                                        sessionOptions(args.threads));
    const id = await timeRuns(idSession, {x: input}, args.warmup, args.iters, args.batch);
    report.identity_latency_ms_p50 = id.latency_ms_p50;
    report.identity_latency_ms_mean = id.latency_ms_mean;
    report.latency_ms_p50_minus_identity = model.latency_ms_p50 - id.latency_ms_p50;
  }
  writeReport(args, report);
}

async function main() {
  const args = parseArgs(process.argv.slice(2));
  const ort = loadOrt();
  if (args.check) await check(ort, args);
  else await bench(ort, args);
}

main().catch((e) => fail(e && e.message ? e.message : String(e)));
