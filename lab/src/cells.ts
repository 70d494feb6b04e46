// Decorations on the notebook's cells: a badge naming the part of the manifest that holds the
// cell (a colour per step), the step's run status, and the diagnostics about the cell.
// Text from the manifest or notebook only ever goes into textContent, never into markup.
import { Notebook } from '@jupyterlab/notebook';

import { IDiagnostic, IProjectView } from './api';

const PALETTE = [
  '#1f77b4',
  '#ff7f0e',
  '#2ca02c',
  '#d62728',
  '#9467bd',
  '#8c564b',
  '#e377c2',
  '#17becf',
  '#bcbd22',
  '#7f7f7f'
];

export const STATUS_MARK: Record<string, string> = {
  pending: '',
  running: '▶',
  succeeded: '✓',
  cached: '↺',
  failed: '✗',
  retrying: '↻',
  'not-run': '·'
};

/** The colour of a step: by its place in the DAG order. */
export function stepColour(view: IProjectView, name: string): string {
  const i = view.steps.findIndex(s => s.name === name);
  return PALETTE[(i < 0 ? 0 : i) % PALETTE.length];
}

export function ownerLabel(owner: string): string {
  return owner.startsWith('step:') ? owner.slice(5) : owner;
}

function colourOf(view: IProjectView, owner: string): string {
  if (owner.startsWith('step:')) {
    return stepColour(view, owner.slice(5));
  }
  return { setup: '#546e7a', parameters: '#6a1b9a', skip: '#9e9e9e' }[owner] || '#9e9e9e';
}

function clear(node: HTMLElement): void {
  node
    .querySelectorAll(':scope > .nbflow-badge, :scope > .nbflow-cell-diagnostics')
    .forEach(n => n.remove());
  node.classList.remove('nbflow-cell-error', 'nbflow-cell-warning');
  delete node.dataset.nbflowOwner;
}

/** Badges and diagnostics on every cell of `notebook` from `view`; `status` maps a step to its
 * run status while a run is shown. */
export function decorate(
  notebook: Notebook,
  view: IProjectView | null,
  status: Record<string, string>
): void {
  const byCell = new Map<number, IDiagnostic[]>();
  for (const d of view ? view.diagnostics : []) {
    for (const c of d.cells) {
      byCell.set(c, [...(byCell.get(c) || []), d]);
    }
  }
  notebook.widgets.forEach((cell, index) => {
    const node = cell.node;
    clear(node);
    if (!view || !view.manifest) {
      return;
    }
    const owner = view.cells[index] ? view.cells[index].owner : '';
    if (owner) {
      node.dataset.nbflowOwner = owner;
      const badge = document.createElement('div');
      badge.className = 'nbflow-badge';
      badge.style.setProperty('--nbflow-colour', colourOf(view, owner));
      const name = ownerLabel(owner);
      const mark = owner.startsWith('step:') ? STATUS_MARK[status[name] || ''] || '' : '';
      badge.textContent = mark ? `${name} ${mark}` : name;
      badge.title = owner.startsWith('step:')
        ? `step ${name}` + (status[name] ? ` (${status[name]})` : '')
        : `${name} cell (nbflow.yaml)`;
      node.appendChild(badge);
    }
    const diagnostics = byCell.get(index + 1) || [];
    if (diagnostics.length) {
      const box = document.createElement('div');
      box.className = 'nbflow-cell-diagnostics';
      for (const d of diagnostics) {
        const item = document.createElement('div');
        item.className = `nbflow-diagnostic nbflow-${d.severity}`;
        const head = document.createElement('span');
        head.className = 'nbflow-diagnostic-code';
        head.textContent = `${d.severity} ${d.code}: `;
        item.appendChild(head);
        item.appendChild(document.createTextNode(d.message));
        if (d.hint) {
          const hint = document.createElement('div');
          hint.className = 'nbflow-hint';
          hint.textContent = `hint: ${d.hint}`;
          item.appendChild(hint);
        }
        box.appendChild(item);
      }
      node.appendChild(box);
      node.classList.add(
        diagnostics.some(d => d.severity === 'error')
          ? 'nbflow-cell-error'
          : 'nbflow-cell-warning'
      );
    }
  });
}
