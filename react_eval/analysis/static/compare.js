// compare: two rollouts of one task side by side, their turns aligned, the first divergence marked.
function counterparts(r){ return ROLL.filter(o => o.run !== r.run && o.task === r.task).sort((a, b) => a.rep - b.rep); }
function showPair(panes, r){
  const others = counterparts(r);
  const other = others.find(o => o.rep === r.rep) || others[0];
  const left = r.run === 0 ? r : other, right = r.run === 0 ? other : r;
  panes.className = 'split';
  const loads = [left, right].map(x => x ? loadChunk(x.i) : Promise.resolve(null));
  panes.append(el('p', {class: 'empty', text: 'loading…'}));
  return Promise.all(loads).then(([a, b]) => renderPair(panes, left, a, right, b),
    err => panes.replaceChildren(el('p', {class: 'empty', text: String(err)})));
}
function renderPair(panes, left, a, right, b){
  panes.replaceChildren();
  const sides = [[left, a, 0], [right, b, 1]];
  const blocks = [];
  for (const [r, chunk, side] of sides) {
    const pane = el('div', {class: 'pane', 'data-side': side});
    if (!r) { pane.append(el('p', {class: 'empty', text: 'this task is not in the other run'})); panes.append(pane); blocks.push([]); continue; }
    const mates = ROLL.filter(o => o.run === r.run && o.task === r.task).sort((x, y) => x.rep - y.rep);
    pane.append(paneHead(r, chunk, mates, (i) => { openRollout(i, false); }));
    panes.append(pane);
    blocks.push(chunk.trajectory ? stepBlocks(chunk.trajectory, r) : []);
  }
  const grid = el('div', {class: 'aligned', style: 'grid-column: 1 / span 2'});
  let diverged = false;
  const cell = (block, side) => block ? el('div', {class: 'cell', 'data-side': side, 'data-turn': block.turn}, block.node)
    : el('div', {class: 'cell missing', 'data-side': side, text: 'no matching turn in this rollout'});
  for (const [x, y] of alignTurns(blocks[0], blocks[1])) {
    if (!diverged && (!x || !y || x.sig !== y.sig)) {
      diverged = true;
      const text = !x ? `B's turn ${y.turn} (${describeSig(y)}) has no counterpart in A` :
        !y ? `A's turn ${x.turn} (${describeSig(x)}) has no counterpart in B` :
        `A's turn ${x.turn}: ${describeSig(x)} — B's turn ${y.turn}: ${describeSig(y)}`;
      grid.append(el('div', {class: 'diverge', id: 'diverge'}, '⚑ the rollouts diverge here: ' + text));
    }
    grid.append(cell(x, 0), cell(y, 1));
  }
  if (!diverged && blocks[0].length) grid.append(el('div', {class: 'diverge same', text: 'the two rollouts make the same calls with the same outcomes at every turn'}));
  grid.append(el('div', {class: 'cell', 'data-side': 0}, a ? resultBox(a.result) : ''), el('div', {class: 'cell', 'data-side': 1}, b ? resultBox(b.result) : ''));
  panes.append(grid);
}
// Rows of [A turn, B turn]: equal turns (same calls, same outcomes) side by side, a changed
// stretch paired in order, turns only one rollout has opposite a gap.
function alignTurns(xs, ys){
  const rows = [];
  let k = 0;
  while (k < xs.length && k < ys.length && xs[k].sig === null && ys[k].sig === null) { rows.push([xs[k], ys[k]]); k++; }
  const ops = lcsOps(xs.slice(k).map(b => b.sig), ys.slice(k).map(b => b.sig));
  let dels = [], adds = [];
  const flush = () => {
    for (let n = 0; n < Math.max(dels.length, adds.length); n++) rows.push([dels[n] || null, adds[n] || null]);
    dels = []; adds = [];
  };
  for (const [op, , i, j] of ops) {
    if (op === ' ') { flush(); rows.push([xs[k + i], ys[k + j]]); }
    else if (op === '-') dels.push(xs[k + i]);
    else adds.push(ys[k + j]);
  }
  flush();
  return rows;
}
function describeSig(block){
  const s = block.sig || '';
  if (s.startsWith('say:')) return 'answers';
  if (s === '') return 'does nothing';
  return s.split('&').map(part => { const name = part.match(/^[^{["]*/)[0]; return part.includes('|true|') ? name + ' (fails)' : name; }).join(', ');
}
