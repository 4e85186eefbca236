// The portal's router: one view per hash route, each returning what stops it.

import { call } from './api.js';
import { renderList } from './list.js';
import { renderFunction } from './function.js';
import { renderDeploy } from './deploy.js';
import { renderSecrets } from './secrets.js';
import { renderDeadLetters } from './dead_letters.js';

const main = document.getElementById('main');
let stop = () => {};

function route() {
  stop();
  main.replaceChildren();
  const parts = location.hash.replace(/^#\/?/, '').split('/').map(decodeURIComponent);
  let stopper;
  if (parts[0] === 'fn' && parts.length === 3) stopper = renderFunction(main, parts[1], parts[2]);
  else if (parts[0] === 'deploy') stopper = renderDeploy(main);
  else if (parts[0] === 'secrets') stopper = renderSecrets(main);
  else if (parts[0] === 'dead-letters') stopper = renderDeadLetters(main);
  else stopper = renderList(main);
  stop = typeof stopper === 'function' ? stopper : () => {};
}

window.addEventListener('hashchange', route);
route();
call('/system/info')
  .then((info) => {
    const version = info && info.version ? info.version.release : '';
    const provider = info && info.provider ? info.provider.provider : '';
    document.getElementById('gateway-info').textContent = `provider ${provider} · gateway ${version}`;
  })
  .catch(() => {});
