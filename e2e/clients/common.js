// Shared by the JavaScript drivers of the e2e client matrix
// (e2e/test_client_matrix.py): the plan, the HTTP agents and the output.
//
// A driver is run as `node <driver>.js <phases> <plan.json>`; it performs the
// phases of the plan (write | read | delete, comma-separated: `write,read`)
// with its client library, in order, and prints one line of JSON,
// `{"<phase>": <what it saw>, ...}`. pytest checks the effect upstream. The
// plan's `stream` is null where the test leaves the multipart stream out.
'use strict';

const crypto = require('crypto');
const dns = require('dns');
const fs = require('fs');
const http = require('http');
const https = require('https');
const { PassThrough } = require('stream');

function loadPlan() {
  const [arg, planPath] = process.argv.slice(2);
  const phases = (arg || '').split(',');
  if (!phases.every((p) => ['write', 'read', 'delete'].includes(p)) || !planPath) {
    console.error('usage: node <driver>.js write|read|delete[,...] <plan.json>');
    process.exit(2);
  }
  return { phases, plan: JSON.parse(fs.readFileSync(planPath, 'utf8')) };
}

// Virtual-hosted style asks for <bucket>.localhost, which the machine's
// resolver need not know: every *.localhost name is loopback here.
function lookup(hostname, options, callback) {
  if (hostname === 'localhost' || hostname.endsWith('.localhost')) {
    if (options && options.all) return callback(null, [{ address: '127.0.0.1', family: 4 }]);
    return callback(null, '127.0.0.1', 4);
  }
  return dns.lookup(hostname, options, callback);
}

function agents(plan) {
  const ca = plan.ca ? fs.readFileSync(plan.ca) : undefined;
  return {
    httpAgent: new http.Agent({ keepAlive: true, lookup }),
    httpsAgent: new https.Agent({ keepAlive: true, lookup, ca }),
  };
}

const sha256 = (buf) => crypto.createHash('sha256').update(buf).digest('hex');

// The plan's stream file as a stream that does not tell its length.
function unknownSizeStream(path) {
  const out = new PassThrough();
  fs.createReadStream(path).pipe(out);
  return out;
}

async function readAll(stream) {
  const chunks = [];
  for await (const c of stream) chunks.push(Buffer.from(c));
  return Buffer.concat(chunks);
}

// The keys the plan writes (relative to its prefix), the stream if it has one.
const written = (plan) => [...Object.keys(plan.objects), plan.copy.to, ...(plan.stream ? [plan.stream.key] : [])];

async function main(impl) {
  const { phases, plan } = loadPlan();
  try {
    const out = {};
    for (const phase of phases) out[phase] = await impl[phase](plan);
    process.stdout.write(JSON.stringify(out) + '\n');
  } catch (e) {
    console.error(e && e.stack ? e.stack : e);
    if (e && e.$response) console.error('response:', e.$response.statusCode, e.$response.headers);
    process.exit(1);
  }
}

module.exports = { agents, lookup, sha256, unknownSizeStream, readAll, written, main };
