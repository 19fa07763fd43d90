/** An entry of the routing file: model index, upstream index within it, and a key. */
export interface Where {
  model?: number | undefined;
  upstream?: number | undefined;
  key?: string | undefined;
}

interface Block {
  /** 1-based line of the `[[models]]` / `[[models.upstreams]]` header. */
  line: number;
  /** 1-based line past the block's last one. */
  end: number;
}

interface ModelBlock extends Block {
  name: string | undefined;
  upstreams: Block[];
}

const MODEL_HEADER = /^\s*\[\[\s*models\s*\]\]/;
const UPSTREAM_HEADER = /^\s*\[\[\s*models\s*\.\s*upstreams\s*\]\]/;
const ANY_HEADER = /^\s*\[/;

/** The `[[models]]` blocks of the file and their `[[models.upstreams]]` (array-of-tables form). */
function blocks(lines: string[]): ModelBlock[] {
  const models: ModelBlock[] = [];
  let open: Block | undefined;
  const close = (at: number) => {
    if (open) open.end = at;
    open = undefined;
  };
  for (const [i, text] of lines.entries()) {
    const n = i + 1;
    if (MODEL_HEADER.test(text)) {
      close(n);
      const m: ModelBlock = { line: n, end: lines.length + 1, name: undefined, upstreams: [] };
      models.push(m);
      open = m;
    } else if (UPSTREAM_HEADER.test(text) && models.length > 0) {
      close(n);
      const u: Block = { line: n, end: lines.length + 1 };
      models.at(-1)?.upstreams.push(u);
      open = u;
    } else if (ANY_HEADER.test(text)) {
      close(n);
    }
  }
  for (const m of models) {
    const name = keyLine(lines, m, "name");
    if (name !== undefined) {
      m.name = /=\s*["']([^"']{0,128})["']/.exec(lines[name - 1] ?? "")?.[1];
    }
  }
  return models;
}

/** The line of `key = …` within a block, if written there. */
function keyLine(lines: string[], block: Block, key: string): number | undefined {
  const re = new RegExp(`^\\s*["']?${key.replace(/[^A-Za-z0-9_-]/g, "")}["']?\\s*=`);
  for (let n = block.line + 1; n < block.end; n++) {
    if (re.test(lines[n - 1] ?? "")) return n;
  }
  return undefined;
}

/**
 * The line (best effort: files written with `[[models]]` headers) and a readable name of an
 * entry, for start-up errors: `models[1] "big", upstreams[0], weight`.
 */
export function locateEntries(text: string, where: Where): { line?: number; entry: string } {
  const lines = text.split(/\r?\n/);
  const parts: string[] = [];
  let line: number | undefined;
  let block: Block | undefined;
  if (where.model !== undefined) {
    const m = blocks(lines)[where.model];
    parts.push(`models[${where.model}]${m?.name ? ` "${m.name}"` : ""}`);
    block = m;
    if (where.upstream !== undefined) {
      parts.push(`upstreams[${where.upstream}]`);
      block = m?.upstreams[where.upstream];
    }
  }
  if (where.key !== undefined) parts.push(where.key);
  if (block) {
    line = (where.key === undefined ? undefined : keyLine(lines, block, where.key)) ?? block.line;
  } else if (where.key !== undefined && where.model === undefined) {
    line = keyLine(lines, { line: 0, end: lines.length + 1 }, where.key);
  }
  return line === undefined ? { entry: parts.join(", ") } : { line, entry: parts.join(", ") };
}
