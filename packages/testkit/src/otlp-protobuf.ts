// A decoder for the parts of OTLP's ExportTraceServiceRequest the test receiver reads, from the
// protobuf wire format (opentelemetry-proto: collector/trace/v1, trace/v1, common/v1), so that the
// receiver takes what the exporter sends by default (OTEL_EXPORTER_OTLP_PROTOCOL=http/protobuf).
// It yields the same shape as the JSON encoding (ids as hex, attributes as typed values), so both
// encodings go through one flattening. Fields it does not read are skipped by wire type.

type Fields = Map<number, (Uint8Array | bigint)[]>;

/** Splits one message into its fields: length-delimited ones as bytes, numeric ones as bigint. */
function fields(buf: Uint8Array): Fields {
  const out: Fields = new Map();
  let pos = 0;
  const varint = (): bigint => {
    let result = 0n;
    for (let shift = 0n; ; shift += 7n) {
      if (pos >= buf.length) throw new Error('protobuf: truncated varint');
      const byte = buf[pos++] ?? 0;
      result |= BigInt(byte & 0x7f) << shift;
      if ((byte & 0x80) === 0) return result;
    }
  };
  const fixed = (bytes: number): bigint => {
    let result = 0n;
    for (let i = bytes - 1; i >= 0; i--) result = (result << 8n) | BigInt(buf[pos + i] ?? 0);
    pos += bytes;
    return result;
  };
  while (pos < buf.length) {
    const key = Number(varint());
    const field = key >>> 3;
    const wire = key & 7;
    let value: Uint8Array | bigint;
    if (wire === 0) value = varint();
    else if (wire === 1) value = fixed(8);
    else if (wire === 5) value = fixed(4);
    else if (wire === 2) {
      const length = Number(varint());
      if (pos + length > buf.length) throw new Error('protobuf: truncated field');
      value = buf.subarray(pos, pos + length);
      pos += length;
    } else throw new Error(`protobuf: unsupported wire type ${wire}`);
    const list = out.get(field) ?? [];
    list.push(value);
    out.set(field, list);
  }
  return out;
}

const bytesOf = (f: Fields, n: number): Uint8Array[] =>
  (f.get(n) ?? []).filter((v): v is Uint8Array => v instanceof Uint8Array);
const first = (f: Fields, n: number): Uint8Array | undefined => bytesOf(f, n)[0];
const text = (b: Uint8Array | undefined) => (b ? Buffer.from(b).toString('utf8') : undefined);
const hex = (b: Uint8Array | undefined) => (b ? Buffer.from(b).toString('hex') : undefined);
const numberOf = (f: Fields, n: number): bigint | undefined => {
  const v = f.get(n)?.[0];
  return typeof v === 'bigint' ? v : undefined;
};

function keyValues(list: Uint8Array[]) {
  return list.map((kv) => {
    const f = fields(kv);
    const any = first(f, 2);
    const v = any ? fields(any) : new Map();
    const str = first(v, 1);
    const int = numberOf(v, 3);
    const dbl = numberOf(v, 4);
    return {
      key: text(first(f, 1)) ?? '',
      value: {
        ...(str !== undefined ? { stringValue: Buffer.from(str).toString('utf8') } : {}),
        ...(numberOf(v, 2) !== undefined ? { boolValue: numberOf(v, 2) === 1n } : {}),
        ...(int !== undefined ? { intValue: BigInt.asIntN(64, int).toString() } : {}),
        ...(dbl !== undefined
          ? { doubleValue: Buffer.from(new BigUint64Array([dbl]).buffer).readDoubleLE(0) }
          : {}),
      },
    };
  });
}

/** ExportTraceServiceRequest from protobuf, in the JSON encoding's shape. */
export function decodeTraceRequest(body: Uint8Array) {
  return {
    resourceSpans: bytesOf(fields(body), 1).map((rsBytes) => {
      const rs = fields(rsBytes);
      const resource = first(rs, 1);
      return {
        resource: { attributes: keyValues(resource ? bytesOf(fields(resource), 1) : []) },
        scopeSpans: bytesOf(rs, 2).map((ssBytes) => {
          const ss = fields(ssBytes);
          const scope = first(ss, 1);
          return {
            scope: { name: text(scope ? first(fields(scope), 1) : undefined) ?? '' },
            spans: bytesOf(ss, 2).map((spanBytes) => {
              const s = fields(spanBytes);
              return {
                traceId: hex(first(s, 1)) ?? '',
                spanId: hex(first(s, 2)) ?? '',
                parentSpanId: hex(first(s, 4)) ?? '',
                name: text(first(s, 5)) ?? '',
                kind: Number(numberOf(s, 6) ?? 0n),
                attributes: keyValues(bytesOf(s, 9)),
                links: bytesOf(s, 13).map((l) => {
                  const link = fields(l);
                  return { traceId: hex(first(link, 1)) ?? '', spanId: hex(first(link, 2)) ?? '' };
                }),
              };
            }),
          };
        }),
      };
    }),
  };
}
