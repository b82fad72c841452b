import { createMemoryStore } from "../../services/authz/store/memory-store.js";
import { defineStoreContract } from "./store-contract.js";

defineStoreContract("memory", async () => {
  let now = Date.now();
  const store = createMemoryStore({ clock: () => now });
  return {
    store,
    now: () => now,
    advance: async (ms) => {
      now += ms;
    },
    close: () => store.close(),
  };
});
