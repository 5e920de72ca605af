// minio-go (v7) through the gateway: one phase of the e2e client matrix plan
// (see e2e/clients/common.js for the protocol): `minio-go-driver
// write|read|delete[,...] plan.json` runs the phases in order and prints one
// line of JSON, {"<phase>": what it saw, ...}.
//
// The client is built as mc builds it by default: no region (minio-go asks
// GetBucketLocation and signs for the region it is told), default options.
package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"
)

type plan struct {
	Endpoint  string            `json:"endpoint"`
	Virtual   bool              `json:"virtual"`
	CA        string            `json:"ca"`
	Region    string            `json:"region"`
	AccessKey string            `json:"access_key"`
	SecretKey string            `json:"secret_key"`
	Bucket    string            `json:"bucket"`
	Prefix    string            `json:"prefix"`
	NewBucket string            `json:"new_bucket"`
	Objects   map[string]string `json:"objects"`
	ListUnder string            `json:"list_prefix"`
	Abort     string            `json:"abort"`
	Range     struct {
		Key   string `json:"key"`
		First int64  `json:"first"`
		Last  int64  `json:"last"`
	} `json:"range"`
	Copy struct {
		From string `json:"from"`
		To   string `json:"to"`
	} `json:"copy"`
	PartSize uint64 `json:"part_size"`
	// nil where the test leaves the multipart stream out.
	Stream *struct {
		Key  string `json:"key"`
		Path string `json:"path"`
		// Uploaded again with default options (no part size).
		DefaultKey string `json:"default_key"`
	} `json:"stream"`
	Presign struct {
		Get string `json:"get"`
		Put string `json:"put"`
	} `json:"presign"`
}

// transport dials every *.localhost name on loopback (virtual-hosted style
// asks for <bucket>.localhost) and trusts the plan's CA.
func transport(p *plan) (http.RoundTripper, error) {
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.Proxy = nil
	d := &net.Dialer{Timeout: 15 * time.Second}
	t.DialContext = func(ctx context.Context, network, addr string) (net.Conn, error) {
		host, port, err := net.SplitHostPort(addr)
		if err == nil && (host == "localhost" || strings.HasSuffix(host, ".localhost")) {
			addr = net.JoinHostPort("127.0.0.1", port)
		}
		return d.DialContext(ctx, network, addr)
	}
	if p.CA != "" {
		pem, err := os.ReadFile(p.CA)
		if err != nil {
			return nil, err
		}
		roots := x509.NewCertPool()
		if !roots.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("no certificate in %s", p.CA)
		}
		t.TLSClientConfig = &tls.Config{RootCAs: roots}
	}
	return t, nil
}

func client(p *plan) (*minio.Client, error) {
	u, err := url.Parse(p.Endpoint)
	if err != nil {
		return nil, err
	}
	t, err := transport(p)
	if err != nil {
		return nil, err
	}
	lookup := minio.BucketLookupPath
	if p.Virtual {
		lookup = minio.BucketLookupDNS
	}
	return minio.New(u.Host, &minio.Options{
		Creds:        credentials.NewStaticV4(p.AccessKey, p.SecretKey, ""),
		Secure:       u.Scheme == "https",
		Transport:    t,
		Region:       p.Region, // empty unless the test sets one
		BucketLookup: lookup,
	})
}

// unknownSize hides the file's size: minio-go sees a plain io.Reader.
type unknownSize struct{ r io.Reader }

func (u unknownSize) Read(b []byte) (int, error) { return u.r.Read(b) }

func putStream(ctx context.Context, c *minio.Client, p *plan, key string, partSize uint64) (string, error) {
	f, err := os.Open(p.Stream.Path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	info, err := c.PutObject(ctx, p.Bucket, p.Prefix+key, unknownSize{f}, -1,
		minio.PutObjectOptions{PartSize: partSize})
	return info.ETag, err
}

func write(ctx context.Context, c *minio.Client, p *plan) (map[string]any, error) {
	out := map[string]any{}
	if p.NewBucket != "" {
		if err := c.MakeBucket(ctx, p.NewBucket, minio.MakeBucketOptions{}); err != nil {
			return nil, fmt.Errorf("MakeBucket: %w", err)
		}
		if ok, err := c.BucketExists(ctx, p.NewBucket); err != nil || !ok {
			return nil, fmt.Errorf("BucketExists: %v %v", ok, err)
		}
		if err := c.RemoveBucket(ctx, p.NewBucket); err != nil {
			return nil, fmt.Errorf("RemoveBucket: %w", err)
		}
		out["bucket_created"] = true
	}
	etags := map[string]string{}
	for name, path := range p.Objects {
		data, err := os.ReadFile(path)
		if err != nil {
			return nil, err
		}
		info, err := c.PutObject(ctx, p.Bucket, p.Prefix+name, bytes.NewReader(data), int64(len(data)),
			minio.PutObjectOptions{})
		if err != nil {
			return nil, fmt.Errorf("PutObject %q: %w", name, err)
		}
		etags[p.Prefix+name] = info.ETag
	}
	out["etags"] = etags
	if _, err := c.CopyObject(ctx,
		minio.CopyDestOptions{Bucket: p.Bucket, Object: p.Prefix + p.Copy.To},
		minio.CopySrcOptions{Bucket: p.Bucket, Object: p.Prefix + p.Copy.From}); err != nil {
		return nil, fmt.Errorf("CopyObject: %w", err)
	}
	if p.Stream != nil {
		etag, err := putStream(ctx, c, p, p.Stream.Key, p.PartSize)
		if err != nil {
			return nil, fmt.Errorf("PutObject (stream, part size %d): %w", p.PartSize, err)
		}
		out["stream_etag"] = etag
		if p.Stream.DefaultKey != "" {
			if etag, err = putStream(ctx, c, p, p.Stream.DefaultKey, 0); err != nil {
				return nil, fmt.Errorf("PutObject (stream, default options): %w", err)
			}
			out["default_stream_etag"] = etag
		}
	}

	core := minio.Core{Client: c}
	key := p.Prefix + p.Abort
	id, err := core.NewMultipartUpload(ctx, p.Bucket, key, minio.PutObjectOptions{})
	if err != nil {
		return nil, fmt.Errorf("NewMultipartUpload: %w", err)
	}
	part := bytes.Repeat([]byte{7}, 1024)
	if _, err := core.PutObjectPart(ctx, p.Bucket, key, id, 1, bytes.NewReader(part), int64(len(part)),
		"", "", nil); err != nil {
		return nil, fmt.Errorf("PutObjectPart: %w", err)
	}
	if err := core.AbortMultipartUpload(ctx, p.Bucket, key, id); err != nil {
		return nil, fmt.Errorf("AbortMultipartUpload: %w", err)
	}
	out["upload_id"] = id
	return out, nil
}

func get(ctx context.Context, c *minio.Client, p *plan, key string, opts minio.GetObjectOptions) ([]byte, error) {
	o, err := c.GetObject(ctx, p.Bucket, key, opts)
	if err != nil {
		return nil, err
	}
	defer o.Close()
	return io.ReadAll(o)
}

func list(ctx context.Context, c *minio.Client, p *plan, prefix string, recursive bool) (keys, prefixes []string, err error) {
	keys, prefixes = []string{}, []string{}
	for o := range c.ListObjects(ctx, p.Bucket, minio.ListObjectsOptions{Prefix: prefix, Recursive: recursive}) {
		if o.Err != nil {
			return nil, nil, o.Err
		}
		if strings.HasSuffix(o.Key, "/") && !recursive {
			prefixes = append(prefixes, o.Key)
		} else {
			keys = append(keys, o.Key)
		}
	}
	return keys, prefixes, nil
}

// written: the keys the write phase leaves (relative to the prefix).
func written(p *plan) []string {
	names := []string{p.Copy.To}
	if p.Stream != nil {
		names = append(names, p.Stream.Key)
		if p.Stream.DefaultKey != "" {
			names = append(names, p.Stream.DefaultKey)
		}
	}
	for name := range p.Objects {
		names = append(names, name)
	}
	return names
}

func read(ctx context.Context, c *minio.Client, p *plan) (map[string]any, error) {
	sums := map[string]string{}
	for _, name := range written(p) {
		data, err := get(ctx, c, p, p.Prefix+name, minio.GetObjectOptions{})
		if err != nil {
			return nil, fmt.Errorf("GetObject %q: %w", name, err)
		}
		h := sha256.Sum256(data)
		sums[p.Prefix+name] = hex.EncodeToString(h[:])
	}
	opts := minio.GetObjectOptions{}
	if err := opts.SetRange(p.Range.First, p.Range.Last); err != nil {
		return nil, err
	}
	part, err := get(ctx, c, p, p.Prefix+p.Range.Key, opts)
	if err != nil {
		return nil, fmt.Errorf("GetObject (range): %w", err)
	}
	keys, prefixes, err := list(ctx, c, p, p.Prefix, false)
	if err != nil {
		return nil, fmt.Errorf("ListObjects: %w", err)
	}
	under, _, err := list(ctx, c, p, p.Prefix+p.ListUnder, true)
	if err != nil {
		return nil, fmt.Errorf("ListObjects (recursive): %w", err)
	}
	getURL, err := c.PresignedGetObject(ctx, p.Bucket, p.Prefix+p.Presign.Get, 10*time.Minute, nil)
	if err != nil {
		return nil, fmt.Errorf("PresignedGetObject: %w", err)
	}
	putURL, err := c.PresignedPutObject(ctx, p.Bucket, p.Prefix+p.Presign.Put, 10*time.Minute)
	if err != nil {
		return nil, fmt.Errorf("PresignedPutObject: %w", err)
	}
	return map[string]any{
		"sha256":        sums,
		"range":         hex.EncodeToString(part),
		"delimited":     map[string][]string{"keys": keys, "prefixes": prefixes},
		"under":         under,
		"presigned_get": getURL.String(),
		"presigned_put": putURL.String(),
	}, nil
}

func remove(ctx context.Context, c *minio.Client, p *plan) (map[string]any, error) {
	names := append(written(p), p.Presign.Put)
	// One RemoveObject, then RemoveObjects (DeleteObjects) for the rest.
	if err := c.RemoveObject(ctx, p.Bucket, p.Prefix+names[0], minio.RemoveObjectOptions{}); err != nil {
		return nil, fmt.Errorf("RemoveObject: %w", err)
	}
	ch := make(chan minio.ObjectInfo, len(names))
	for _, name := range names[1:] {
		ch <- minio.ObjectInfo{Key: p.Prefix + name}
	}
	close(ch)
	for e := range c.RemoveObjects(ctx, p.Bucket, ch, minio.RemoveObjectsOptions{}) {
		return nil, fmt.Errorf("RemoveObjects %q: %w", e.ObjectName, e.Err)
	}
	left, _, err := list(ctx, c, p, p.Prefix, true)
	if err != nil {
		return nil, err
	}
	return map[string]any{"left": left}, nil
}

func main() {
	if len(os.Args) != 3 {
		fmt.Fprintln(os.Stderr, "usage: minio-go-driver write|read|delete[,...] plan.json")
		os.Exit(2)
	}
	raw, err := os.ReadFile(os.Args[2])
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	var p plan
	if err := json.Unmarshal(raw, &p); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	c, err := client(&p)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	phases := map[string]func(context.Context, *minio.Client, *plan) (map[string]any, error){
		"write": write, "read": read, "delete": remove,
	}
	out := map[string]any{}
	for _, name := range strings.Split(os.Args[1], ",") {
		phase, ok := phases[name]
		if !ok {
			fmt.Fprintln(os.Stderr, "unknown phase", name)
			os.Exit(2)
		}
		res, err := phase(ctx, c, &p)
		if err != nil {
			fmt.Fprintf(os.Stderr, "%s: %v\n", name, err)
			os.Exit(1)
		}
		out[name] = res
	}
	if err := json.NewEncoder(os.Stdout).Encode(out); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}
