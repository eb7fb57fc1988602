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
  const n = Math.max(blocks[0].length, blocks[1].length);
  let diverged = false;
  for (let k = 0; k < n; k++) {
    const x = blocks[0][k], y = blocks[1][k];
    if (!diverged && k > 0 && (!x || !y || x.sig !== y.sig)) {
      diverged = true;
      grid.append(el('div', {class: 'diverge', id: 'diverge'}, `⚑ the two rollouts diverge here, at turn ${k}: ` + describeSig(x) + '  vs  ' + describeSig(y)));
    }
    grid.append(x ? el('div', {class: 'cell', 'data-side': 0, 'data-turn': x.turn}, x.node) : el('div', {class: 'cell missing', 'data-side': 0, text: 'no turn ' + k}));
    grid.append(y ? el('div', {class: 'cell', 'data-side': 1, 'data-turn': y.turn}, y.node) : el('div', {class: 'cell missing', 'data-side': 1, text: 'no turn ' + k}));
  }
  if (!diverged && n) grid.append(el('div', {class: 'diverge same', text: 'the two rollouts make the same calls with the same outcomes at every turn'}));
  grid.append(el('div', {class: 'cell', 'data-side': 0}, a ? resultBox(a.result) : ''), el('div', {class: 'cell', 'data-side': 1}, b ? resultBox(b.result) : ''));
  panes.append(grid);
}
function describeSig(block){
  if (!block) return '(no such turn)';
  const s = block.sig || '';
  if (s.startsWith('say:')) return 'answers';
  return s.split('&').map(part => { const name = part.match(/^[^{["]*/)[0]; return part.includes('|true|') ? name + ' (fails)' : name; }).join(', ');
}
