/** Renders every array of flat objects in a document as a table (usage rows, servers, …). */

const isObj = (v: unknown): v is Record<string, unknown> => typeof v === "object" && v !== null;
const cell = (v: unknown) =>
  v === null || v === undefined ? "—" : typeof v === "object" ? JSON.stringify(v) : String(v);

export function DataTable({ doc }: { doc: unknown }) {
  const tables: [string, Record<string, unknown>[]][] = [];
  if (Array.isArray(doc)) tables.push(["rows", doc.filter(isObj)]);
  else if (isObj(doc)) {
    for (const [k, v] of Object.entries(doc)) {
      if (Array.isArray(v) && v.some(isObj)) tables.push([k, v.filter(isObj)]);
    }
  }
  return (
    <>
      {tables.map(([name, rows]) => {
        const cols = [...new Set(rows.flatMap((r) => Object.keys(r)))];
        return (
          <div className="table-wrap" key={name}>
            <table>
              <caption>{name}</caption>
              <thead>
                <tr>
                  {cols.map((c) => (
                    <th scope="col" key={c}>
                      {c}
                    </th>
                  ))}
                </tr>
              </thead>
              <tbody>
                {rows.map((r, i) => (
                  // biome-ignore lint/suspicious/noArrayIndexKey: rows have no stable id
                  <tr key={i}>
                    {cols.map((c) => (
                      <td key={c}>{cell(r[c])}</td>
                    ))}
                  </tr>
                ))}
              </tbody>
            </table>
          </div>
        );
      })}
    </>
  );
}
