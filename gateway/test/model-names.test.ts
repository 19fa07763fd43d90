import { describe, expect, it } from "vitest";
import { HttpError } from "../src/errors.js";
import { type ListedModel, ListedModelNames } from "../src/services/model-gate.js";

describe("ListedModelNames", () => {
  const models: ListedModel[] = [
    { id: "small", aliases: ["tiny"] },
    { id: "Org/Large-7B", aliases: ["large", "L"], default: true },
  ];

  it("resolves default, no model, aliases and ids in any case and spacing", async () => {
    const names = new ListedModelNames(async () => models);
    expect(await names.resolve("default")).toBe("Org/Large-7B");
    expect(await names.resolve(" DEFAULT ")).toBe("Org/Large-7B");
    expect(await names.resolve(undefined)).toBe("Org/Large-7B");
    expect(await names.resolve("  ")).toBe("Org/Large-7B");
    expect(await names.resolve("TINY")).toBe("small");
    expect(await names.resolve(" l ")).toBe("Org/Large-7B");
    expect(await names.resolve("org/large-7b")).toBe("Org/Large-7B");
    expect(await names.resolve(" unknown ")).toBe("unknown");
  });

  it("takes the first model as the default when none is marked", async () => {
    const names = new ListedModelNames(async () => [{ id: "a" }, { id: "b" }]);
    expect(await names.resolve("default")).toBe("a");
    const none = new ListedModelNames(async () => []);
    await expect(none.resolve("default")).rejects.toMatchObject({ statusCode: 503 });
    expect(await none.resolve("named")).toBe("named");
  });

  it("reads the list once per TTL, shares a read, and fails closed when it cannot", async () => {
    let now = 0;
    let reads = 0;
    let fail = false;
    const names = new ListedModelNames(
      async () => {
        reads += 1;
        if (fail) throw new HttpError(503, "LLM_UNAVAILABLE", "down");
        return models;
      },
      1000,
      () => now,
    );
    await Promise.all([names.resolve("tiny"), names.resolve("large"), names.resolve("x")]);
    expect(reads).toBe(1);
    now = 999;
    await names.resolve("tiny");
    expect(reads).toBe(1);
    now = 1000;
    fail = true;
    await expect(names.resolve("tiny")).rejects.toThrow("down");
    fail = false;
    expect(await names.resolve("tiny")).toBe("small");
    expect(reads).toBe(3);
  });
});
