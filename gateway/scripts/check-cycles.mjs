// Fails when src/ has an import cycle between modules, or between folders (each top-level
// folder of src/ is one node, each top-level file its own): `npm run lint` runs it.
import madge from "madge";

const graph = (await madge("src", { fileExtensions: ["ts"], tsConfig: "tsconfig.json" })).obj();

/** The node a module belongs to: its top-level folder, or itself for a top-level file. */
const nodeOf = (file) => (file.includes("/") ? `${file.split("/")[0]}/` : file);

const edges = new Map();
for (const [from, tos] of Object.entries(graph)) {
  for (const to of tos) {
    const a = nodeOf(from);
    const b = nodeOf(to);
    if (a === b) continue;
    if (!edges.has(a)) edges.set(a, new Map());
    if (!edges.get(a).has(b)) edges.get(a).set(b, `${from} -> ${to}`);
  }
}

/** Strongly connected components with more than one node (Tarjan). */
function cycles(nodes, next) {
  let index = 0;
  const stack = [];
  const info = new Map();
  const found = [];
  const visit = (v) => {
    info.set(v, { index, low: index, onStack: true });
    index += 1;
    stack.push(v);
    for (const w of next(v)) {
      if (!info.has(w)) {
        visit(w);
        info.get(v).low = Math.min(info.get(v).low, info.get(w).low);
      } else if (info.get(w).onStack) {
        info.get(v).low = Math.min(info.get(v).low, info.get(w).index);
      }
    }
    if (info.get(v).low === info.get(v).index) {
      const component = [];
      let w;
      do {
        w = stack.pop();
        info.get(w).onStack = false;
        component.push(w);
      } while (w !== v);
      if (component.length > 1) found.push(component.sort());
    }
  };
  for (const v of nodes) if (!info.has(v)) visit(v);
  return found;
}

const moduleCycles = cycles(Object.keys(graph), (v) => graph[v] ?? []);
const folderCycles = cycles([...edges.keys()], (v) => [...(edges.get(v)?.keys() ?? [])]);
for (const c of moduleCycles) console.error(`module cycle: ${c.join(", ")}`);
for (const c of folderCycles) {
  console.error(`folder cycle: ${c.join(", ")}`);
  for (const a of c)
    for (const b of c) if (edges.get(a)?.has(b)) console.error(`  ${edges.get(a).get(b)}`);
}
if (moduleCycles.length || folderCycles.length) process.exit(1);
console.log(
  `no import cycles (${Object.keys(graph).length} modules, ${edges.size} folders and top-level files)`,
);
