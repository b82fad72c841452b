import { describe, expect, it } from "vitest";
import { formatTraceparent, parseTraceparent } from "../../startup/trace-context.js";
import { tracingConfig } from "../../startup/tracing-config.js";

const TRACE = "4bf92f3577b34da6a3ce929d0e0e4736";
const SPAN = "00f067aa0ba902b7";

describe("W3C Trace Context §3.2: traceparent", () => {
  it.each([
    ["the specification's example", `00-${TRACE}-${SPAN}-01`, { trace_id: TRACE, span_id: SPAN, flags: 1 }],
    ["not sampled", `00-${TRACE}-${SPAN}-00`, { trace_id: TRACE, span_id: SPAN, flags: 0 }],
    ["a later version with more fields (§3.2.4: parse the first four)", `01-${TRACE}-${SPAN}-01-what-comes-next`, { trace_id: TRACE, span_id: SPAN, flags: 1 }],
    ["version ff is invalid", `ff-${TRACE}-${SPAN}-01`, undefined],
    ["version 00 with more fields is invalid", `00-${TRACE}-${SPAN}-01-extra`, undefined],
    ["an all-zero trace id is invalid", `00-${"0".repeat(32)}-${SPAN}-01`, undefined],
    ["an all-zero parent id is invalid", `00-${TRACE}-${"0".repeat(16)}-01`, undefined],
    ["upper-case hex is invalid", `00-${TRACE.toUpperCase()}-${SPAN}-01`, undefined],
    ["a short trace id is invalid", `00-${TRACE.slice(2)}-${SPAN}-01`, undefined],
    ["absent", undefined, undefined],
    ["repeated (an array) is ignored", [`00-${TRACE}-${SPAN}-01`, `00-${TRACE}-${SPAN}-01`], undefined],
  ])("%s", (_name, header, expected) => {
    expect(parseTraceparent(header)).toEqual(expected);
  });

  it("formats what it parses", () => {
    expect(formatTraceparent(TRACE, SPAN, 1)).toBe(`00-${TRACE}-${SPAN}-01`);
    expect(parseTraceparent(formatTraceparent(TRACE, SPAN, 0))).toEqual({ trace_id: TRACE, span_id: SPAN, flags: 0 });
  });
});

describe("tracing configuration from the OTEL_* variables", () => {
  const read = (env: Record<string, string>) => {
    const problems: string[] = [];
    return { config: tracingConfig(env, "gatehouse-authz", problems), problems };
  };

  it.each([
    ["off when no endpoint is set", {}],
    ["off with OTEL_SDK_DISABLED=true", { OTEL_SDK_DISABLED: "true", OTEL_EXPORTER_OTLP_ENDPOINT: "http://collector:4318" }],
    ["off with OTEL_TRACES_EXPORTER=none", { OTEL_TRACES_EXPORTER: "none", OTEL_EXPORTER_OTLP_ENDPOINT: "http://collector:4318" }],
  ])("%s", (_name, env) => {
    expect(read(env)).toEqual({ config: undefined, problems: [] });
  });

  it("OTEL_EXPORTER_OTLP_ENDPOINT gets /v1/traces; the traces endpoint is used as is; headers, service name and sampler are read", () => {
    expect(read({ OTEL_EXPORTER_OTLP_ENDPOINT: "http://collector:4318/" })).toEqual({
      config: { endpoint: "http://collector:4318/v1/traces", headers: {}, serviceName: "gatehouse-authz", sampleRatio: 1 },
      problems: [],
    });
    expect(
      read({
        OTEL_EXPORTER_OTLP_ENDPOINT: "http://ignored:4318",
        OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: "https://collector.example/otlp/traces",
        OTEL_EXPORTER_OTLP_HEADERS: "api-key=a%20b,X-Team=auth",
        OTEL_SERVICE_NAME: "authz-eu",
        OTEL_TRACES_SAMPLER: "parentbased_traceidratio",
        OTEL_TRACES_SAMPLER_ARG: "0.25",
      }).config,
    ).toEqual({ endpoint: "https://collector.example/otlp/traces", headers: { "api-key": "a b", "x-team": "auth" }, serviceName: "authz-eu", sampleRatio: 0.25 });
  });

  it("every problem is listed, by the variable's name", () => {
    const { problems } = read({
      OTEL_EXPORTER_OTLP_ENDPOINT: "collector:4318",
      OTEL_EXPORTER_OTLP_HEADERS: "novalue",
      OTEL_TRACES_SAMPLER: "traceidratio",
      OTEL_TRACES_SAMPLER_ARG: "2",
    });
    expect(problems).toEqual([
      "OTEL_EXPORTER_OTLP_ENDPOINT: must be an http or https URL",
      "OTEL_EXPORTER_OTLP_HEADERS: expected key=value pairs separated by commas",
      'OTEL_TRACES_SAMPLER_ARG: must be a number from 0 to 1, got "2"',
    ]);
    expect(read({ OTEL_TRACES_EXPORTER: "zipkin" }).problems).toEqual(['OTEL_TRACES_EXPORTER: only "otlp" (OTLP over HTTP) or "none" are supported, got "zipkin"']);
  });
});
