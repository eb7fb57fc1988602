// start: first render and the route in the address (#r12, #r12/c/<call>, #t/<run>/<repeat>/<task>, #list?...).
state.rows = sorted(ROLL);
renderList();
route();
