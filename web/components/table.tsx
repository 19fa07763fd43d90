import type { ReactNode } from "react";

/** A column header that only screen readers read (a column of buttons). */
export const hiddenHeader = (text: string) => <span className="visually-hidden">{text}</span>;

/** A data table in a scrolling wrapper: a caption for screen readers, one header row. */
export function Table({
  caption,
  columns,
  children,
}: {
  caption: string;
  /** Header cells, in order (strings are also their keys). */
  columns: ReactNode[];
  children: ReactNode;
}) {
  return (
    <div className="table-wrap">
      <table>
        <caption className="visually-hidden">{caption}</caption>
        <thead>
          <tr>
            {columns.map((c, i) => (
              // biome-ignore lint/suspicious/noArrayIndexKey: fixed columns, never reordered
              <th key={i} scope="col">
                {c}
              </th>
            ))}
          </tr>
        </thead>
        <tbody>{children}</tbody>
      </table>
    </div>
  );
}
