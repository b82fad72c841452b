import type { DescField, DescMethodUnary } from "@bufbuild/protobuf";
import { AuthorizationService } from "../gen/gatehouse/v1/authorization_service_pb.js";
import { BatchedCallSchema, BatchedResultSchema } from "../gen/gatehouse/v1/batch_service_pb.js";

/**
 * Which case of a batched call's `request` and of its result's `outcome`
 * (proto/gatehouse/v1/batch_service.proto) carries which AuthorizationService
 * method: the case whose message is the method's request type, and the case
 * whose message is its response type. Read off the descriptors, so that the
 * gateway (which builds batches) and the authz service (which serves them)
 * agree by construction; test/unit/batched-calls.test.ts checks that every
 * unary method of AuthorizationService has both.
 */
export interface BatchedMethod {
  readonly method: DescMethodUnary;
  /** The `request` case (a property name, as protobuf-es names oneof cases: exchangeCode). */
  readonly requestCase: string;
  /** The `outcome` case of its response. */
  readonly responseCase: string;
}

/** The most calls one CallBatch carries: the gateway sends at most this many, the authz service refuses more. */
export const MAX_BATCH_CALLS = 64;

/** By method, for the gateway. */
export const BATCHED_BY_METHOD: ReadonlyMap<DescMethodUnary, BatchedMethod> = batchedMethods();
/** By request case, for the authz service. */
export const BATCHED_BY_REQUEST_CASE: ReadonlyMap<string, BatchedMethod> = new Map([...BATCHED_BY_METHOD.values()].map((batched) => [batched.requestCase, batched]));

function batchedMethods(): Map<DescMethodUnary, BatchedMethod> {
  const requestOneof = BatchedCallSchema.oneofs.find((oneof) => oneof.name === "request");
  const outcomeOneof = BatchedResultSchema.oneofs.find((oneof) => oneof.name === "outcome");
  const caseOf = (fields: readonly DescField[] | undefined, typeName: string) =>
    fields?.find((field) => field.fieldKind === "message" && field.message.typeName === typeName)?.localName;
  const methods = new Map<DescMethodUnary, BatchedMethod>();
  for (const described of AuthorizationService.methods) {
    if (described.methodKind !== "unary") continue;
    const method = described as DescMethodUnary;
    const requestCase = caseOf(requestOneof?.fields, method.input.typeName);
    const responseCase = caseOf(outcomeOneof?.fields, method.output.typeName);
    if (requestCase !== undefined && responseCase !== undefined) methods.set(method, { method, requestCase, responseCase });
  }
  return methods;
}
