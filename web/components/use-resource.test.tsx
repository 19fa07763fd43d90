// @vitest-environment jsdom
import { act, render, screen } from "@testing-library/react";
import { describe, expect, it } from "vitest";
import { type Resource, useResource } from "./use-resource";

/** Shows what the hook holds and hands the test its `reload`. */
function Probe({
  load,
  onError,
  got,
}: {
  load: (signal: AbortSignal) => Promise<string>;
  onError?: (err: unknown) => boolean;
  got: (r: Resource<string>) => void;
}) {
  const r = useResource(load, { onError });
  got(r);
  return (
    <p>
      data={r.data ?? "none"} error={r.error ?? "none"}
    </p>
  );
}

describe("useResource", () => {
  it("drops the answer of a load superseded by a newer one (and aborts it)", async () => {
    const resolvers: ((v: string) => void)[] = [];
    const signals: AbortSignal[] = [];
    const load = (signal: AbortSignal) =>
      new Promise<string>((resolve) => {
        signals.push(signal);
        resolvers.push(resolve);
      });
    let r: Resource<string> | undefined;
    render(<Probe load={load} got={(x) => (r = x)} />);
    expect(signals).toHaveLength(1);
    act(() => void r?.reload());
    expect(signals).toHaveLength(2);
    expect(signals[0]?.aborted).toBe(true);
    await act(async () => resolvers[1]?.("new"));
    await act(async () => resolvers[0]?.("old"));
    expect(screen.getByText("data=new error=none")).toBeTruthy();
  });

  it("shows a failed load's message, keeps its data, and lets onError take one over", async () => {
    let fail: Error | null = null;
    const load = async () => {
      if (fail) throw fail;
      return "one";
    };
    const onError = (err: unknown) => (err as Error).message === "handled";
    let r: Resource<string> | undefined;
    render(<Probe load={load} onError={onError} got={(x) => (r = x)} />);
    await screen.findByText("data=one error=none");
    fail = new Error("Gateway down");
    await act(async () => r?.reload());
    expect(screen.getByText("data=one error=Gateway down")).toBeTruthy();
    fail = new Error("handled");
    await act(async () => r?.reload());
    expect(screen.getByText("data=one error=Gateway down")).toBeTruthy();
  });
});
