import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { logLevel } from "../../startup/log-level.js";
import { portOverride } from "../../startup/port-override.js";

describe("portOverride: the listening port from the environment", () => {
  it.each<[string, string | undefined, number]>([
    ["unset: the file's port", undefined, 8080],
    ["empty: the file's port", "", 8080],
    ["a port number", "9000", 9000],
    ["0 asks for a free port", "0", 0],
    ["the highest port", "65535", 65535],
  ])("%s", (_name, value, port) => {
    const problems: string[] = [];
    expect(portOverride({ GATEHOUSE_GATEWAY_PORT: value }, "GATEHOUSE_GATEWAY_PORT", 8080, problems)).toBe(port);
    expect(problems).toEqual([]);
  });

  it.each<[string, string]>([
    ["not a number", "http"],
    ["above 65535", "65536"],
    ["fractional", "80.5"],
    ["negative", "-1"],
    ["with a space", " 80"],
    ["in hex", "0x50"],
  ])("%s is a problem at the variable's name", (_name, value) => {
    const problems: string[] = [];
    portOverride({ GATEHOUSE_AUTHZ_PORT: value }, "GATEHOUSE_AUTHZ_PORT", 50051, problems);
    expect(problems).toEqual([`GATEHOUSE_AUTHZ_PORT: must be a port number, got ${JSON.stringify(value)}`]);
  });

  it("accepts exactly the decimal numbers 0 to 65535 (fast-check)", () => {
    fc.assert(
      fc.property(fc.oneof(fc.nat({ max: 70_000 }).map(String), fc.string()), (value) => {
        const problems: string[] = [];
        const port = portOverride({ PORT: value }, "PORT", 1, problems);
        const valid = value === "" || (/^\d+$/.test(value) && Number(value) <= 65535);
        expect(problems.length === 0).toBe(valid);
        if (valid && value !== "") expect(port).toBe(Number(value));
      }),
    );
  });
});

describe("logLevel: pino's level from LOG_LEVEL", () => {
  it.each(["fatal", "error", "warn", "info", "debug", "trace", "silent"])("%s is a level", (level) => {
    const problems: string[] = [];
    expect(logLevel({ LOG_LEVEL: level }, problems)).toBe(level);
    expect(problems).toEqual([]);
  });

  it("unset or empty is info", () => {
    expect([logLevel({}, []), logLevel({ LOG_LEVEL: "" }, [])]).toEqual(["info", "info"]);
  });

  it("an unknown level is a listed problem, not a crash later in pino", () => {
    const problems: string[] = [];
    logLevel({ LOG_LEVEL: "verbose" }, problems);
    expect(problems).toEqual(['LOG_LEVEL: must be one of fatal, error, warn, info, debug, trace, silent, got "verbose"']);
  });
});
