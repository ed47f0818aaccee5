#!/usr/bin/env node
// Runs an ONNX model in ONNX Runtime (npm onnxruntime-node, one intra-op thread) on .npy inputs
// and writes each output as out_dir/<output name>.npy. Inputs are given in the model's input
// order. Used by test_onnx_export.cpp to check that exported models reproduce minnow's outputs.
//
//   node tests/onnx/ort_run.js model.onnx out_dir in0.npy [in1.npy ...]
//
// .npy: format versions 1-3, little-endian, C order; float32, float64, int64, int32.
'use strict';

const fs = require('fs');
const path = require('path');

const ort = require(path.join(__dirname, '..', '..', 'node_modules', 'onnxruntime-node'));

const kTypes = {
  '<f4': {ort: 'float32', array: Float32Array},
  '<f8': {ort: 'float64', array: Float64Array},
  '<i8': {ort: 'int64', array: BigInt64Array},
  '<i4': {ort: 'int32', array: Int32Array},
};

function readNpy(file) {
  const buf = fs.readFileSync(file);
  if (buf.length < 10 || buf.readUInt8(0) !== 0x93 || buf.toString('latin1', 1, 6) !== 'NUMPY') {
    throw new Error(`${file}: not a .npy file`);
  }
  const major = buf.readUInt8(6);
  const headerLen = major === 1 ? buf.readUInt16LE(8) : buf.readUInt32LE(8);
  const start = major === 1 ? 10 : 12;
  const header = buf.toString('latin1', start, start + headerLen);
  const descr = /'descr':\s*'([^']+)'/.exec(header);
  const fortran = /'fortran_order':\s*(True|False)/.exec(header);
  const shapeMatch = /'shape':\s*\(([^)]*)\)/.exec(header);
  if (!descr || !fortran || !shapeMatch) throw new Error(`${file}: bad .npy header ${header}`);
  if (fortran[1] === 'True') throw new Error(`${file}: fortran_order arrays are not supported`);
  const type = kTypes[descr[1]];
  if (!type) throw new Error(`${file}: unsupported dtype ${descr[1]}`);
  const dims = shapeMatch[1].split(',').map((s) => s.trim()).filter((s) => s.length).map(Number);
  const count = dims.reduce((a, b) => a * b, 1);
  const offset = start + headerLen;
  const bytes = count * type.array.BYTES_PER_ELEMENT;
  if (buf.length - offset !== bytes) {
    throw new Error(`${file}: holds ${buf.length - offset} data bytes, shape needs ${bytes}`);
  }
  // Copy into a fresh, aligned buffer: the file's data offset need not be aligned.
  const data = new type.array(count);
  Buffer.from(data.buffer).set(buf.subarray(offset, offset + bytes));
  return new ort.Tensor(type.ort, data, dims);
}

function writeNpy(file, tensor) {
  const entry = Object.entries(kTypes).find(([, t]) => t.ort === tensor.type);
  if (!entry) throw new Error(`output ${file}: unsupported type ${tensor.type}`);
  const dims = tensor.dims;
  const shape = dims.length === 1 ? `(${dims[0]},)` : `(${dims.join(', ')})`;
  let header = `{'descr': '${entry[0]}', 'fortran_order': False, 'shape': ${shape}, }`;
  // Magic (6) + version (2) + length (2) + header + '\n' padded to a multiple of 64.
  const total = Math.ceil((10 + header.length + 1) / 64) * 64;
  header = header + ' '.repeat(total - 10 - header.length - 1) + '\n';
  const pre = Buffer.alloc(10);
  pre.writeUInt8(0x93, 0);
  pre.write('NUMPY', 1, 'latin1');
  pre.writeUInt8(1, 6);
  pre.writeUInt8(0, 7);
  pre.writeUInt16LE(header.length, 8);
  const data = Buffer.from(tensor.data.buffer, tensor.data.byteOffset, tensor.data.byteLength);
  const tmp = `${file}.tmp`;
  fs.writeFileSync(tmp, Buffer.concat([pre, Buffer.from(header, 'latin1'), data]));
  fs.renameSync(tmp, file);
}

async function main() {
  const args = process.argv.slice(2);
  if (args.length < 2) {
    console.error('usage: node ort_run.js model.onnx out_dir [in0.npy ...]');
    process.exit(2);
  }
  const [model, outDir, ...inputs] = args;
  const session = await ort.InferenceSession.create(model, {
    intraOpNumThreads: 1,
    interOpNumThreads: 1,
    graphOptimizationLevel: 'all',
  });
  if (inputs.length !== session.inputNames.length) {
    throw new Error(`${model} has ${session.inputNames.length} inputs ` +
                    `(${session.inputNames.join(', ')}), ${inputs.length} .npy files given`);
  }
  const feeds = {};
  session.inputNames.forEach((name, i) => { feeds[name] = readNpy(inputs[i]); });
  const results = await session.run(feeds);
  fs.mkdirSync(outDir, {recursive: true});
  for (const name of session.outputNames) writeNpy(path.join(outDir, `${name}.npy`), results[name]);
}

main().catch((e) => {
  console.error(`ort_run: ${e.message}`);
  process.exit(1);
});
