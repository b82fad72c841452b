import type { FastifyInstance, FastifySchema, FastifySchemaValidationError } from "fastify";
import { parseForm, REPEATABLE_PARAMETERS } from "./parse-form.js";

/**
 * Makes an encapsulated fastify context accept `application/x-www-form-urlencoded`
 * bodies and nothing else, parsed by parseForm (duplicates, bad
 * percent-encoding and invalid UTF-8 refused). Every other content type is a
 * 400 invalid_request: RFC 6749 §4.1.3, §6, RFC 7662 §2.1 and RFC 7009 §2.1
 * all name this format ("using the application/x-www-form-urlencoded format").
 * Oversized bodies are refused by fastify's bodyLimit as 413 before parsing.
 */
export function acceptOnlyFormBodies(app: FastifyInstance): void {
  app.removeAllContentTypeParsers();
  app.addContentTypeParser("application/x-www-form-urlencoded", { parseAs: "buffer" }, (request, body, done) => {
    // The format is defined over UTF-8 (WHATWG URL §5); another declared charset would be misread.
    const charset = /;\s*charset\s*=\s*"?([^";\s]+)/i.exec(request.headers["content-type"] ?? "")?.[1];
    if (charset !== undefined && !/^utf-?8$/i.test(charset)) {
      done(clientError("the form must be encoded in UTF-8"), undefined);
      return;
    }
    try {
      done(null, parseForm(body as Buffer, { repeatable: REPEATABLE_PARAMETERS }));
    } catch (error) {
      done(error as Error, undefined);
    }
  });
  app.addContentTypeParser("*", (_request, _payload, done) => {
    done(clientError("the content type must be application/x-www-form-urlencoded"), undefined);
  });
}

/** A parameter's syntax: RFC 6749 Appendix A (or the RFC that defines it), and a length bound. */
export interface ParameterSyntax {
  pattern?: string;
  maxLength: number;
  enum?: readonly string[];
  /** The parameter may be given up to this many times (RFC 8707 §2 `resource`; parseForm's `repeatable`): its value is an array. */
  maxRepeats?: number;
}

/** RFC 6749 Appendix A: VSCHAR = %x20-7E. */
export const VSCHAR = "^[\\x20-\\x7E]+$";
/** RFC 6749 Appendix A.10: grant-name = 1*name-char / URI-reference; name-char = "-" / "." / "_" / DIGIT / ALPHA. */
export const GRANT_NAME = "^(?:[-._A-Za-z0-9]+|[A-Za-z][A-Za-z0-9+.-]*:[\\x21-\\x7E]+)$";
/** RFC 6749 Appendix A.15/A.16: UNICODECHARNOCRLF, any character but CR and LF (and other controls). */
export const UNICODECHARNOCRLF = "^[^\\u0000-\\u001F\\u007F]+$";

/**
 * A JSON schema for a parsed form. `unknown: "ignore"` accepts parameters the
 * endpoint does not know, as RFC 6749 §3.1 and §3.2 require ("MUST ignore
 * unrecognized request parameters"), still bounded in size; `unknown: "reject"`
 * is for the gateway's own HTML forms, which send exactly their fields.
 */
export function formSchema(
  parameters: Readonly<Record<string, ParameterSyntax>>,
  options: { required?: readonly string[]; unknown: "ignore" | "reject" },
): FastifySchema["body"] {
  const properties = Object.fromEntries(
    Object.entries(parameters).map(([name, syntax]) => {
      const value = { type: "string", maxLength: syntax.maxLength, ...(syntax.pattern === undefined ? {} : { pattern: syntax.pattern }), ...(syntax.enum === undefined ? {} : { enum: syntax.enum }) };
      return [name, syntax.maxRepeats === undefined ? value : { type: "array", items: value, maxItems: syntax.maxRepeats }];
    }),
  );
  return {
    type: "object",
    required: options.required ?? [],
    properties,
    ...(options.unknown === "ignore"
      ? { additionalProperties: { type: "string", maxLength: 4096 } }
      : { propertyNames: { enum: Object.keys(parameters) } }),
  };
}

/**
 * Turns schema failures into a short invalid_request description that names
 * the parameter (never the value, never the regular expression).
 */
export function describeFormErrors(errors: FastifySchemaValidationError[]): Error {
  const [first] = errors;
  // A repeatable parameter's value is an array: its items' paths end in their index.
  const name = first?.instancePath.replace(/^\//, "").replace(/\/\d+$/, "") ?? "";
  let message: string;
  if (first === undefined) message = "invalid request";
  else if (first.keyword === "required") message = `${String((first.params as { missingProperty?: unknown }).missingProperty)} is required`;
  else if (first.keyword === "type" && name === "") message = "the request must carry an application/x-www-form-urlencoded body";
  else if (first.schemaPath.startsWith("#/propertyNames")) message = "the form has an unexpected field";
  else if (first.keyword === "maxLength") message = `${describe(name)} is too long`;
  else if (first.keyword === "maxItems") message = `${describe(name)} is given too many times`;
  else message = `${describe(name)} is malformed`;
  return clientError(message);
}

function describe(name: string): string {
  return /^[A-Za-z0-9_.-]{1,64}$/.test(name) ? name : "a parameter";
}

function clientError(message: string): Error {
  return Object.assign(new Error(message), { statusCode: 400 });
}

/**
 * The schema check of formSchema(parameters, options), without fastify: the
 * description of the first failure exactly as fastify's validator and
 * describeFormErrors give it, or undefined for a form that passes. Used by
 * the token and introspection endpoints served beneath fastify
 * (plugins/lean-token-endpoints.ts), so that both ways in refuse the same
 * input with the same words. The order is ajv's (allErrors off): `required`
 * in its order, then each unknown parameter (in the form's order), then each
 * known one in the table's order: its type, then for a repeatable one its
 * count, then length before syntax (of each value in turn).
 */
export function checkForm(
  form: Readonly<Record<string, string | readonly string[]>>,
  parameters: Readonly<Record<string, ParameterSyntax>>,
  options: { required?: readonly string[]; unknown: "ignore" },
): string | undefined {
  for (const name of options.required ?? []) if (form[name] === undefined) return `${name} is required`;
  for (const name in form) {
    if (Object.hasOwn(parameters, name)) continue;
    // fastify's ajv coerces types "array"-wise: a repeated parameter's one value passes as a string, two do not.
    const given = form[name]!;
    const value = typeof given === "string" ? given : given.length === 1 ? given[0]! : undefined;
    if (value === undefined) return `${describe(name)} is malformed`;
    if (value.length > UNKNOWN_PARAMETER_MAX_LENGTH && codePoints(value) > UNKNOWN_PARAMETER_MAX_LENGTH) return `${describe(name)} is too long`;
  }
  for (const name in parameters) {
    const value = form[name];
    if (value === undefined) continue;
    const syntax = parameters[name]!;
    if (syntax.maxRepeats === undefined) {
      const one = typeof value === "string" ? value : value.length === 1 ? value[0]! : undefined;
      if (one === undefined) return `${describe(name)} is malformed`;
      const refused = checkValue(one, syntax);
      if (refused !== undefined) return `${describe(name)} ${refused}`;
      continue;
    }
    if (typeof value === "string") return `${describe(name)} is malformed`;
    if (value.length > syntax.maxRepeats) return `${describe(name)} is given too many times`;
    for (const item of value) {
      const refused = checkValue(item, syntax);
      if (refused !== undefined) return `${describe(name)} ${refused}`;
    }
  }
  return undefined;
}

/** One value against its syntax: "is too long", "is malformed", or undefined. */
function checkValue(value: string, syntax: ParameterSyntax): string | undefined {
  // JSON Schema's maxLength counts code points, as ajv does (not UTF-16 units).
  if (value.length > syntax.maxLength && codePoints(value) > syntax.maxLength) return "is too long";
  if (syntax.pattern !== undefined && !compiledPattern(syntax.pattern).test(value)) return "is malformed";
  if (syntax.enum !== undefined && !syntax.enum.includes(value)) return "is malformed";
  return undefined;
}

/** formSchema's bound on a parameter the endpoint does not know. */
const UNKNOWN_PARAMETER_MAX_LENGTH = 4096;

const patterns = new Map<string, RegExp>();
/** ajv compiles a schema's pattern with the `u` flag. */
function compiledPattern(pattern: string): RegExp {
  let compiled = patterns.get(pattern);
  if (compiled === undefined) patterns.set(pattern, (compiled = new RegExp(pattern, "u")));
  return compiled;
}

function codePoints(value: string): number {
  let count = 0;
  for (const _ of value) count++;
  return count;
}
