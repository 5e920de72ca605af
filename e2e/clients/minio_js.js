// The MinIO JavaScript SDK through the gateway: one phase of the client
// matrix plan (see common.js). Built without a region, as by default: it
// asks GetBucketLocation and signs for the region it is told.
'use strict';

const Minio = require('minio');
const fs = require('fs');
const { agents, sha256, unknownSizeStream, readAll, written, main } = require('./common');

function client(plan) {
  const url = new URL(plan.endpoint);
  const secure = url.protocol === 'https:';
  const a = agents(plan);
  const opts = {
    endPoint: url.hostname,
    port: Number(url.port),
    useSSL: secure,
    accessKey: plan.access_key,
    secretKey: plan.secret_key,
    pathStyle: !plan.virtual,
    transportAgent: secure ? a.httpsAgent : a.httpAgent,
    // A stream of unknown size is cut into parts of this size (the SDK's
    // default is 64 MiB, its minimum 5 MiB).
    partSize: plan.part_size,
  };
  if (plan.region) opts.region = plan.region;
  return new Minio.Client(opts);
}

async function listStream(stream) {
  const keys = [];
  const prefixes = [];
  for await (const o of stream) {
    if (o.prefix) prefixes.push(o.prefix);
    else keys.push(o.name);
  }
  return { keys, prefixes };
}

async function write(plan) {
  const mc = client(plan);
  const B = plan.bucket;
  const P = plan.prefix;
  const out = { etags: {} };
  if (plan.new_bucket) {
    await mc.makeBucket(plan.new_bucket);
    if (!(await mc.bucketExists(plan.new_bucket))) throw new Error('made bucket does not exist');
    await mc.removeBucket(plan.new_bucket);
    out.bucket_created = true;
  }
  for (const [name, path] of Object.entries(plan.objects)) {
    const r = await mc.putObject(B, P + name, fs.readFileSync(path));
    out.etags[P + name] = r.etag;
  }
  await mc.copyObject(
    new Minio.CopySourceOptions({ Bucket: B, Object: P + plan.copy.from }),
    new Minio.CopyDestinationOptions({ Bucket: B, Object: P + plan.copy.to }),
  );
  if (plan.stream) {
    // No size: the SDK reads partSize blocks and uploads them as parts.
    const r = await mc.putObject(B, P + plan.stream.key, unknownSizeStream(plan.stream.path));
    out.stream_etag = r.etag;
  }

  const key = P + plan.abort;
  const uploadID = await mc.initiateNewMultipartUpload(B, key, {});
  await mc.uploadPart({ bucketName: B, objectName: key, uploadID, partNumber: 1, headers: {} },
    Buffer.alloc(1024, 7));
  await mc.abortMultipartUpload(B, key, uploadID);
  out.upload_id = uploadID;
  return out;
}

async function read(plan) {
  const mc = client(plan);
  const B = plan.bucket;
  const P = plan.prefix;
  const out = { sha256: {} };
  for (const name of written(plan)) {
    out.sha256[P + name] = sha256(await readAll(await mc.getObject(B, P + name)));
  }
  const { key, first, last } = plan.range;
  out.range = (await readAll(await mc.getPartialObject(B, P + key, first, last - first + 1))).toString('hex');
  out.delimited = await listStream(mc.listObjectsV2(B, P, false));
  out.under = (await listStream(mc.listObjectsV2(B, P + plan.list_prefix, true))).keys;
  out.presigned_get = await mc.presignedGetObject(B, P + plan.presign.get, 600);
  out.presigned_put = await mc.presignedPutObject(B, P + plan.presign.put, 600);
  return out;
}

async function del(plan) {
  const mc = client(plan);
  const P = plan.prefix;
  const names = [...written(plan), plan.presign.put];
  // One RemoveObject, then DeleteObjects for the rest.
  await mc.removeObject(plan.bucket, P + names[0]);
  await mc.removeObjects(plan.bucket, names.slice(1).map((n) => P + n));
  return { left: (await listStream(mc.listObjectsV2(plan.bucket, P, true))).keys };
}

main({ write, read, delete: del });
