import { afterEach } from "vitest";

// Unmount React trees between component tests (testing-library does this only with globals on).
afterEach(async () => {
  if (typeof document === "undefined") return;
  const { cleanup } = await import("@testing-library/react");
  cleanup();
});
