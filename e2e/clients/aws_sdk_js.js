// The AWS SDK for JavaScript v3 (@aws-sdk/client-s3, lib-storage,
// s3-request-presigner) through the gateway: one phase of the client matrix
// plan (see common.js). Default client settings apart from the endpoint,
// the addressing style and no retries.
'use strict';

const {
  S3Client, CreateBucketCommand, DeleteBucketCommand, HeadBucketCommand, PutObjectCommand,
  GetObjectCommand, ListObjectsV2Command, CopyObjectCommand, DeleteObjectsCommand,
  CreateMultipartUploadCommand, UploadPartCommand, AbortMultipartUploadCommand,
} = require('@aws-sdk/client-s3');
const { Upload } = require('@aws-sdk/lib-storage');
const { getSignedUrl } = require('@aws-sdk/s3-request-presigner');
const fs = require('fs');
const { agents, sha256, unknownSizeStream, readAll, written, main } = require('./common');

function client(plan, settings = {}) {
  return new S3Client({
    ...settings,
    endpoint: plan.endpoint,
    region: plan.region || 'us-east-1',
    credentials: { accessKeyId: plan.access_key, secretAccessKey: plan.secret_key },
    forcePathStyle: !plan.virtual,
    maxAttempts: 1,
    requestHandler: agents(plan),
  });
}

const copySource = (bucket, key) =>
  `${bucket}/${key.split('/').map(encodeURIComponent).join('/')}`;

async function write(plan) {
  const s3 = client(plan);
  const B = plan.bucket;
  const P = plan.prefix;
  const out = { etags: {} };
  if (plan.new_bucket) {
    await s3.send(new CreateBucketCommand({ Bucket: plan.new_bucket }));
    await s3.send(new HeadBucketCommand({ Bucket: plan.new_bucket }));
    await s3.send(new DeleteBucketCommand({ Bucket: plan.new_bucket }));
    out.bucket_created = true;
  }
  for (const [name, path] of Object.entries(plan.objects)) {
    const r = await s3.send(new PutObjectCommand({ Bucket: B, Key: P + name, Body: fs.readFileSync(path) }));
    out.etags[P + name] = r.ETag;
  }
  await s3.send(new CopyObjectCommand({
    Bucket: B, Key: P + plan.copy.to, CopySource: copySource(B, P + plan.copy.from),
  }));
  if (plan.stream) {
    // lib-storage: a Body stream without a length becomes a multipart upload
    // of partSize parts.
    const up = new Upload({
      client: s3,
      params: { Bucket: B, Key: P + plan.stream.key, Body: unknownSizeStream(plan.stream.path) },
      partSize: plan.part_size,
    });
    out.stream_etag = (await up.done()).ETag;
  }

  const key = P + plan.abort;
  const mpu = await s3.send(new CreateMultipartUploadCommand({ Bucket: B, Key: key }));
  await s3.send(new UploadPartCommand({
    Bucket: B, Key: key, UploadId: mpu.UploadId, PartNumber: 1, Body: Buffer.alloc(1024, 7),
  }));
  await s3.send(new AbortMultipartUploadCommand({ Bucket: B, Key: key, UploadId: mpu.UploadId }));
  out.upload_id = mpu.UploadId;
  return out;
}

async function list(s3, plan, prefix, delimiter) {
  const keys = [];
  const prefixes = [];
  let token;
  do {
    const r = await s3.send(new ListObjectsV2Command({
      Bucket: plan.bucket, Prefix: prefix, Delimiter: delimiter, ContinuationToken: token,
    }));
    (r.Contents || []).forEach((o) => keys.push(o.Key));
    (r.CommonPrefixes || []).forEach((p) => prefixes.push(p.Prefix));
    token = r.NextContinuationToken;
  } while (token);
  return { keys, prefixes };
}

async function read(plan) {
  const s3 = client(plan);
  const B = plan.bucket;
  const P = plan.prefix;
  const out = { sha256: {} };
  for (const name of written(plan)) {
    const r = await s3.send(new GetObjectCommand({ Bucket: B, Key: P + name }));
    out.sha256[P + name] = sha256(await readAll(r.Body));
  }
  const { key, first, last } = plan.range;
  const r = await s3.send(new GetObjectCommand({ Bucket: B, Key: P + key, Range: `bytes=${first}-${last}` }));
  out.range = (await readAll(r.Body)).toString('hex');
  out.delimited = await list(s3, plan, P, '/');
  out.under = (await list(s3, plan, P + plan.list_prefix)).keys;
  out.presigned_get = await getSignedUrl(s3, new GetObjectCommand({ Bucket: B, Key: P + plan.presign.get }),
    { expiresIn: 600 });
  // With the default requestChecksumCalculation (WHEN_SUPPORTED), the
  // presigner signs x-amz-checksum-crc32 of an empty body into the URL, which
  // no upload of data can match: presign PUTs with a client that computes
  // checksums only when required.
  const presigner = client(plan, { requestChecksumCalculation: 'WHEN_REQUIRED' });
  out.presigned_put = await getSignedUrl(presigner, new PutObjectCommand({ Bucket: B, Key: P + plan.presign.put }),
    { expiresIn: 600 });
  return out;
}

async function del(plan) {
  const s3 = client(plan);
  const P = plan.prefix;
  const names = [...written(plan), plan.presign.put];
  // DeleteObjects (a body with a checksum the SDK computes).
  const r = await s3.send(new DeleteObjectsCommand({
    Bucket: plan.bucket, Delete: { Objects: names.map((n) => ({ Key: P + n })) },
  }));
  if (r.Errors && r.Errors.length) throw new Error(`DeleteObjects: ${JSON.stringify(r.Errors)}`);
  return { left: (await list(s3, plan, P)).keys };
}

main({ write, read, delete: del });
