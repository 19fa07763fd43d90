import { prefixCacheFigures } from "@/lib/prefix-cache";
import type { AdminUpstream } from "@/lib/types";
import { Table } from "../table";

/**
 * The prefix caches of a model's llm-server upstreams, as their last health check reported
 * them: host memory held of its bound, entries, hit rate, prompt tokens restored and reused.
 * Nothing when no upstream reports one (OpenAI upstreams, the model not loaded).
 */
export function PrefixCacheTable({
  model,
  upstreams,
}: {
  model: string;
  upstreams: AdminUpstream[];
}) {
  const reporting = upstreams.flatMap((u) =>
    u.prefix_cache ? [{ ...u, cache: u.prefix_cache }] : [],
  );
  if (reporting.length === 0) return null;
  return (
    <>
      <p className="muted">
        Prefix cache: the KV states of conversations kept in each llm-server's host memory, so that
        a resent history is restored instead of read again; counted since the model loaded.
      </p>
      <Table
        caption={`Prefix caches of ${model}`}
        columns={[
          "URL",
          "Held / capacity",
          "Entries",
          "Hit rate",
          "Restored tokens",
          "Prompt tokens reused",
        ]}
      >
        {reporting.map((u) => {
          const f = prefixCacheFigures(u.cache);
          return (
            <tr key={`${u.url} ${u.model}`} data-testid="prefix-cache">
              <td>
                <code>{u.url}</code>
              </td>
              <td>{f.held}</td>
              <td>{f.entries}</td>
              <td>{f.hitRate}</td>
              <td>{f.restored}</td>
              <td>{f.reused}</td>
            </tr>
          );
        })}
      </Table>
    </>
  );
}
