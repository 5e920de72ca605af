// Shared by the JavaScript drivers of the e2e client matrix
// (e2e/test_client_matrix.py): the plan, the HTTP agents and the output.
//
// A driver is run as `node <driver>.js <phase> <plan.json>`; it performs one
// phase of the plan (write | read | delete) with its client library and prints
// one line of JSON with what it saw. pytest checks the effect upstream.
'use strict';

const crypto = require('crypto');
const dns = require('dns');
const fs = require('fs');
const http = require('http');
const https = require('https');
const { PassThrough } = require('stream');

function loadPlan() {
  const [phase, planPath] = process.argv.slice(2);
  if (!['write', 'read', 'delete'].includes(phase) || !planPath) {
    console.error('usage: node <driver>.js write|read|delete <plan.json>');
    process.exit(2);
  }
  return { phase, plan: JSON.parse(fs.readFileSync(planPath, 'utf8')) };
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

async function main(phases) {
  const { phase, plan } = loadPlan();
  try {
    const out = await phases[phase](plan);
    process.stdout.write(JSON.stringify(out) + '\n');
  } catch (e) {
    console.error(e && e.stack ? e.stack : e);
    if (e && e.$response) console.error('response:', e.$response.statusCode, e.$response.headers);
    process.exit(1);
  }
}

module.exports = { agents, lookup, sha256, unknownSizeStream, readAll, main };
