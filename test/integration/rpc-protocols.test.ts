import { defineProtocolSuite } from "./rpc-protocol-suite.js";

// One suite, both server paths: clients must not be able to tell them apart.
defineProtocolSuite({ fastPath: true });
defineProtocolSuite({ fastPath: false });
