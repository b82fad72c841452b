import type { Environment } from "./environment.js";

/**
 * Where and how spans are exported: OTLP over HTTP (protobuf-free JSON
 * encoding of the OTLP/HTTP exporter), from the standard OpenTelemetry
 * environment variables. Undefined: tracing is off (no SDK, no span).
 */
export interface TracingConfig {
  /** The OTLP/HTTP traces URL (…/v1/traces). */
  readonly endpoint: string;
  /** Headers sent with every export (OTEL_EXPORTER_OTLP_HEADERS: an API key, say). */
  readonly headers: Readonly<Record<string, string>>;
  /** The `service.name` resource attribute. */
  readonly serviceName: string;
  /** Fraction of new traces (no sampled parent) that are recorded; a caller's decision is followed (parent-based). */
  readonly sampleRatio: number;
}

const SAMPLERS = ["always_on", "always_off", "traceidratio", "parentbased_always_on", "parentbased_always_off", "parentbased_traceidratio"];

/**
 * Reads the OpenTelemetry SDK's environment variables
 * (https://opentelemetry.io/docs/specs/otel/configuration/sdk-environment-variables/)
 * that gatehouse honours: tracing is on when OTEL_EXPORTER_OTLP_TRACES_ENDPOINT
 * (used as is) or OTEL_EXPORTER_OTLP_ENDPOINT (plus /v1/traces) is set, and
 * off when neither is, or OTEL_SDK_DISABLED=true, or OTEL_TRACES_EXPORTER=none.
 * Also OTEL_EXPORTER_OTLP_(TRACES_)HEADERS, OTEL_SERVICE_NAME,
 * OTEL_TRACES_SAMPLER and OTEL_TRACES_SAMPLER_ARG (always parent-based: a
 * caller's sampled flag is followed). Problems join the others.
 */
export function tracingConfig(env: Environment, defaultServiceName: string, problems: string[]): TracingConfig | undefined {
  if (env.OTEL_SDK_DISABLED?.toLowerCase() === "true") return undefined;
  const exporter = env.OTEL_TRACES_EXPORTER;
  if (exporter === "none") return undefined;
  if (exporter !== undefined && exporter !== "" && exporter !== "otlp") {
    problems.push(`OTEL_TRACES_EXPORTER: only "otlp" (OTLP over HTTP) or "none" are supported, got ${JSON.stringify(exporter)}`);
    return undefined;
  }
  const traces = nonEmpty(env.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT);
  const base = nonEmpty(env.OTEL_EXPORTER_OTLP_ENDPOINT);
  const endpoint = traces ?? (base === undefined ? undefined : `${base.replace(/\/+$/, "")}/v1/traces`);
  if (endpoint === undefined) return undefined;
  const name = traces === undefined ? "OTEL_EXPORTER_OTLP_ENDPOINT" : "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT";
  let url: URL | undefined;
  try {
    url = new URL(endpoint);
  } catch {
    problems.push(`${name}: not a URL: ${JSON.stringify(endpoint)}`);
  }
  if (url !== undefined && url.protocol !== "http:" && url.protocol !== "https:") problems.push(`${name}: must be an http or https URL`);

  const headersName = env.OTEL_EXPORTER_OTLP_TRACES_HEADERS !== undefined ? "OTEL_EXPORTER_OTLP_TRACES_HEADERS" : "OTEL_EXPORTER_OTLP_HEADERS";
  const headers = parseHeaders(env[headersName], headersName, problems);

  const sampler = nonEmpty(env.OTEL_TRACES_SAMPLER) ?? "parentbased_always_on";
  let sampleRatio = 1;
  if (!SAMPLERS.includes(sampler)) {
    problems.push(`OTEL_TRACES_SAMPLER: must be one of ${SAMPLERS.join(", ")}, got ${JSON.stringify(sampler)}`);
  } else if (sampler.endsWith("always_off")) {
    sampleRatio = 0;
  } else if (sampler.endsWith("traceidratio")) {
    const arg = nonEmpty(env.OTEL_TRACES_SAMPLER_ARG);
    sampleRatio = arg === undefined ? 1 : Number(arg);
    if (!(sampleRatio >= 0 && sampleRatio <= 1)) problems.push(`OTEL_TRACES_SAMPLER_ARG: must be a number from 0 to 1, got ${JSON.stringify(arg)}`);
  }
  return { endpoint, headers, serviceName: nonEmpty(env.OTEL_SERVICE_NAME) ?? defaultServiceName, sampleRatio };
}

function nonEmpty(value: string | undefined): string | undefined {
  return value === undefined || value.trim() === "" ? undefined : value.trim();
}

/** `key1=value1,key2=value2`, each part percent-decoded (the W3C Baggage format the specification names). */
function parseHeaders(value: string | undefined, name: string, problems: string[]): Record<string, string> {
  const headers: Record<string, string> = {};
  if (value === undefined || value.trim() === "") return headers;
  for (const part of value.split(",")) {
    const equals = part.indexOf("=");
    if (equals <= 0) {
      problems.push(`${name}: expected key=value pairs separated by commas`);
      continue;
    }
    try {
      headers[decodeURIComponent(part.slice(0, equals).trim()).toLowerCase()] = decodeURIComponent(part.slice(equals + 1).trim());
    } catch {
      problems.push(`${name}: a key or value is not valid percent-encoding`);
    }
  }
  return headers;
}
