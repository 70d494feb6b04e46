// The nbflow side panel: the current notebook's pipeline (steps in DAG order, cell ranges,
// variables on edges, parameters, metrics, diagnostics with hints) and its buttons.
// Every text from the manifest or notebook goes into textContent, never into markup.
import { Dialog, showDialog, showErrorMessage } from '@jupyterlab/apputils';
import { NotebookPanel } from '@jupyterlab/notebook';
import { Widget } from '@lumino/widgets';

import * as api from './api';
import { decorate, STATUS_MARK, stepColour } from './cells';

const DEBOUNCE_MS = 600;
const POLL_MS = 1000;
const DISK_CHECK_MS = 4000;

function el<K extends keyof HTMLElementTagNameMap>(
  tag: K,
  className?: string,
  text?: string
): HTMLElementTagNameMap[K] {
  const node = document.createElement(tag);
  if (className) {
    node.className = className;
  }
  if (text !== undefined) {
    node.textContent = text;
  }
  return node;
}

/** The diagnostics at lines of the manifest, its own and those it is related to. */
function manifestDiagnostics(view: api.IProjectView): api.IDiagnostic[] {
  const out: api.IDiagnostic[] = [];
  for (const d of view.diagnostics) {
    if (d.target === 'manifest') {
      out.push(d);
    }
    for (const r of d.related) {
      if (r.target === 'manifest') {
        out.push({ ...d, ...r });
      }
    }
  }
  return out;
}

export interface IManifestSource {
  /** The unsaved text of the manifest when an editor holds it open, else null. */
  text(path: string): string | null;
  /** Mark the lines of the file's open editors that these diagnostics point at. */
  mark(path: string, diagnostics: api.IDiagnostic[]): void;
  /** Show what is on disk in an open editor of the file that holds no unsaved changes. */
  reload(path: string): Promise<void>;
  /** Open a file (the manifest) in an editor at a 1-based line and column. */
  open(path: string, line: number | null, column: number | null): Promise<void>;
}

export class NbflowPanel extends Widget {
  constructor(private manifests: IManifestSource) {
    super();
    this.id = 'nbflow-panel';
    this.addClass('nbflow-panel');
    this.title.caption = 'nbflow pipeline';
    this.render();
  }

  get view(): api.IProjectView | null {
    return this._view;
  }

  get notebook(): NotebookPanel | null {
    return this._notebook;
  }

  /** Follow another notebook (or none). */
  setNotebook(panel: NotebookPanel | null): void {
    if (this._notebook === panel) {
      return;
    }
    if (this._notebook) {
      this._notebook.model?.contentChanged.disconnect(this.schedule, this);
    }
    this._notebook = panel;
    this._view = null;
    this._run = null;
    this._build = null;
    this._error = null;
    if (panel) {
      void panel.context.ready.then(() => {
        if (this._notebook === panel) {
          panel.model?.contentChanged.connect(this.schedule, this);
          void this.refresh();
        }
      });
    }
    this.render();
  }

  /** Validate again after the user stops typing. */
  schedule(): void {
    window.clearTimeout(this._timer);
    this._timer = window.setTimeout(() => void this.refresh(), DEBOUNCE_MS);
  }

  /** The manifest's unsaved text, when an editor has it open (it is validated live too). */
  manifestChanged(): void {
    this.schedule();
  }

  /** Validate what is on screen: the notebook's unsaved content, the manifest's open editor. */
  async refresh(): Promise<void> {
    const panel = this._notebook;
    if (!panel || !panel.model) {
      return;
    }
    const seq = ++this._seq;
    try {
      const manifestPath = this._view?.manifest;
      const unsaved = manifestPath ? this.manifests.text(manifestPath) : null;
      const view = await api.project(
        panel.context.path,
        panel.model.toJSON(),
        unsaved === null ? undefined : unsaved
      );
      if (seq !== this._seq || panel !== this._notebook) {
        return; // a newer request was sent, or the user moved on
      }
      if (
        this._run &&
        this._run.state !== 'running' &&
        this._view &&
        view.manifestText !== this._view.manifestText
      ) {
        this._run = null; // its statuses were those of another pipeline
      }
      this._view = view;
      this._error = null;
    } catch (err) {
      if (seq === this._seq) {
        this._error = (err as Error).message;
      }
    }
    this.render();
  }

  /** Move the selected cells to `target` (setup, skip, parameters, step:<name>). */
  async assign(target: string): Promise<void> {
    const panel = this._notebook;
    if (!panel || !panel.model) {
      return;
    }
    if (!this._view || !this._view.manifest) {
      await showErrorMessage('nbflow', 'This notebook has no nbflow.yaml: create the pipeline first.');
      return;
    }
    const manifest = this._view.manifest;
    if (this.manifests.text(manifest) !== null) {
      // the edit is made to the file: it would be lost, or lose, the editor's changes
      await showErrorMessage(
        'nbflow: the manifest was not changed',
        `${manifest} has unsaved changes in an editor: save them first.`
      );
      return;
    }
    const cells: number[] = [];
    panel.content.widgets.forEach((cell, i) => {
      if (panel.content.isSelectedOrActive(cell)) {
        cells.push(i + 1);
      }
    });
    try {
      this._view = await api.edit(
        panel.context.path,
        cells,
        target,
        panel.model.toJSON(),
        this._view.manifestText
      );
      this._error = null;
      await this.manifests.reload(manifest);
    } catch (err) {
      await showErrorMessage('nbflow: the manifest was not changed', (err as Error).message);
      await this.refresh();
      return;
    }
    this.render();
  }

  async createPipeline(): Promise<void> {
    const panel = this._notebook;
    if (!panel) {
      return;
    }
    let draft: string;
    try {
      draft = (await api.initDraft(panel.context.path)).draft;
    } catch (err) {
      await showErrorMessage('nbflow', (err as Error).message);
      return;
    }
    const body = new Widget();
    body.addClass('nbflow-draft');
    body.node.appendChild(el('p', '', 'nbflow init proposes this nbflow.yaml, beside the notebook:'));
    body.node.appendChild(el('pre', 'nbflow-draft-text', draft));
    const result = await showDialog({
      title: 'Create pipeline',
      body,
      buttons: [Dialog.cancelButton(), Dialog.okButton({ label: 'Create nbflow.yaml' })]
    });
    if (!result.button.accept) {
      return;
    }
    try {
      this._view = await api.initWrite(panel.context.path);
    } catch (err) {
      await showErrorMessage('nbflow', (err as Error).message);
    }
    await this.refresh();
  }

  async run(): Promise<void> {
    const panel = this._notebook;
    if (!panel) {
      return;
    }
    await panel.context.save(); // the run reads the files: what is on screen must be in them
    try {
      this._run = await api.startRun(panel.context.path);
    } catch (err) {
      await showErrorMessage('nbflow run', (err as Error).message);
      return;
    }
    this.render();
    const id = this._run.id;
    while (this._run && this._run.id === id && this._run.state === 'running') {
      await new Promise(resolve => window.setTimeout(resolve, POLL_MS));
      try {
        this._run = await api.runState(id);
      } catch (err) {
        this._error = (err as Error).message;
        break;
      }
      this.render();
    }
  }

  async build(): Promise<void> {
    const panel = this._notebook;
    if (!panel) {
      return;
    }
    await panel.context.save();
    this._build = { pending: true };
    this.render();
    try {
      this._build = { info: await api.build(panel.context.path) };
    } catch (err) {
      this._build = { error: (err as Error).message };
    }
    this.render();
  }

  /** Reload when the manifest changed on disk and no editor holds unsaved changes to it. */
  async checkDisk(): Promise<void> {
    const path = this._view?.manifest;
    if (!path || this.manifests.text(path) !== null) {
      return;
    }
    await this.refresh();
  }

  protected onAfterAttach(): void {
    this._disk = window.setInterval(() => void this.checkDisk(), DISK_CHECK_MS);
  }

  protected onBeforeDetach(): void {
    window.clearInterval(this._disk);
  }

  private status(): Record<string, string> {
    const out: Record<string, string> = {};
    for (const s of this._run ? this._run.steps : []) {
      out[s.name] = s.status;
    }
    return out;
  }

  render(): void {
    const root = this.node;
    root.textContent = '';
    const panel = this._notebook;
    if (panel) {
      decorate(panel.content, this._view, this.status());
    }
    const header = el('div', 'nbflow-header');
    header.appendChild(el('h2', '', 'nbflow'));
    root.appendChild(header);
    if (!panel) {
      root.appendChild(el('p', 'nbflow-empty', 'Open a notebook to see its pipeline.'));
      return;
    }
    if (this._error) {
      root.appendChild(el('p', 'nbflow-error-text', this._error));
    }
    const view = this._view;
    if (view && view.manifest) {
      this.manifests.mark(view.manifest, manifestDiagnostics(view));
    }
    if (!view) {
      root.appendChild(el('p', 'nbflow-empty', 'Reading the pipeline…'));
      return;
    }
    if (!view.manifest) {
      root.appendChild(
        el('p', 'nbflow-empty', 'This notebook has no nbflow.yaml beside it.')
      );
      root.appendChild(this.button('Create pipeline', 'nbflow-create', () => this.createPipeline()));
      return;
    }
    const title = el('div', 'nbflow-title');
    title.appendChild(el('span', 'nbflow-name', view.name || '(unnamed)'));
    title.appendChild(
      el('span', `nbflow-state ${view.valid ? 'nbflow-valid' : 'nbflow-invalid'}`, view.valid ? 'valid' : 'has errors')
    );
    title.appendChild(el('div', 'nbflow-manifest-path', view.manifest));
    root.appendChild(title);

    const buttons = el('div', 'nbflow-buttons');
    buttons.appendChild(this.button('Validate', 'nbflow-validate', () => this.refresh()));
    const running = this._run?.state === 'running';
    buttons.appendChild(this.button('Run', 'nbflow-run', () => this.run(), !view.valid || running));
    buttons.appendChild(this.button('Build', 'nbflow-build', () => this.build(), !view.valid));
    root.appendChild(buttons);

    this.renderRun(root);
    this.renderBuild(root);
    this.renderSteps(root, view);
    this.renderList(
      root,
      'Parameters',
      view.parameters.map(p => `${p.name}: ${p.type || 'str'} = ${JSON.stringify(p.default)}`)
    );
    this.renderList(root, 'Metrics', view.metrics.map(m => `${m.name} (${m.goal})`));
    this.renderDiagnostics(root, view);
  }

  private renderSteps(root: HTMLElement, view: api.IProjectView): void {
    const section = el('section', 'nbflow-steps');
    section.appendChild(el('h3', '', 'Steps'));
    const status = this.status();
    const list = el('ol');
    for (const step of view.steps) {
      const item = el('li', 'nbflow-step');
      item.dataset.step = step.name;
      const chip = el('span', 'nbflow-chip');
      chip.style.background = stepColour(view, step.name);
      item.appendChild(chip);
      item.appendChild(el('span', 'nbflow-step-name', step.name));
      item.appendChild(el('span', 'nbflow-step-cells', ` cells ${step.range}`));
      if (status[step.name]) {
        item.appendChild(
          el('span', `nbflow-step-status nbflow-status-${status[step.name]}`, ` ${STATUS_MARK[status[step.name]] || ''} ${status[step.name]}`)
        );
      }
      for (const input of step.inputs) {
        item.appendChild(el('div', 'nbflow-edge', `← ${input.variable} from ${input.from}`));
      }
      if (step.parameters.length) {
        item.appendChild(el('div', 'nbflow-detail', `params: ${step.parameters.join(', ')}`));
      }
      if (step.metrics.length) {
        item.appendChild(el('div', 'nbflow-detail', `metrics: ${step.metrics.join(', ')}`));
      }
      list.appendChild(item);
    }
    section.appendChild(list);
    if (view.edges.length) {
      const edges = el('ul', 'nbflow-edges');
      for (const e of view.edges) {
        edges.appendChild(
          el('li', '', `${e.from} → ${e.to}: ${e.afterOnly ? '(after)' : e.variables.join(', ')}`)
        );
      }
      section.appendChild(el('h3', '', 'Data flow'));
      section.appendChild(edges);
    }
    root.appendChild(section);
  }

  private renderList(root: HTMLElement, title: string, items: string[]): void {
    if (!items.length) {
      return;
    }
    const section = el('section', `nbflow-${title.toLowerCase()}`);
    section.appendChild(el('h3', '', title));
    const list = el('ul');
    items.forEach(text => list.appendChild(el('li', '', text)));
    section.appendChild(list);
    root.appendChild(section);
  }

  private renderDiagnostics(root: HTMLElement, view: api.IProjectView): void {
    const section = el('section', 'nbflow-diagnostics');
    section.appendChild(el('h3', '', `Diagnostics (${view.diagnostics.length})`));
    for (const d of view.diagnostics) {
      const item = el('div', `nbflow-diagnostic nbflow-${d.severity}`);
      const where =
        d.target === 'notebook' || (d.cells.length && d.target !== 'manifest')
          ? `cell ${d.cells.join(', ')}`
          : `${d.file || ''}${d.line ? `:${d.line}` : ''}`;
      item.appendChild(el('div', 'nbflow-diagnostic-where', `${d.severity} ${d.code} · ${where}`));
      item.appendChild(el('div', 'nbflow-diagnostic-message', d.message));
      if (d.hint) {
        item.appendChild(el('div', 'nbflow-hint', `hint: ${d.hint}`));
      }
      if (d.target === 'manifest' && d.file) {
        const file = d.file;
        item.classList.add('nbflow-clickable');
        item.title = `open ${file} at line ${d.line || 1}`;
        item.onclick = () => void this.manifests.open(file, d.line, d.column);
      } else if (d.cells.length) {
        item.classList.add('nbflow-clickable');
        item.onclick = () => this.showCell(d.cells[0]);
      }
      section.appendChild(item);
    }
    root.appendChild(section);
  }

  private renderRun(root: HTMLElement): void {
    const run = this._run;
    if (!run) {
      return;
    }
    const section = el('section', `nbflow-run-state nbflow-run-${run.state}`);
    section.appendChild(el('h3', '', `Run: ${run.state}`));
    const metrics = Object.entries(run.metrics);
    if (metrics.length) {
      section.appendChild(
        el('div', 'nbflow-detail', metrics.map(([k, v]) => `${k} = ${v}`).join(', '))
      );
    }
    for (const [step, path] of Object.entries(run.reports)) {
      const link = el('a', 'nbflow-report', `report of ${step}`);
      link.href = api.filesUrl(path);
      link.target = '_blank';
      link.rel = 'noopener';
      section.appendChild(link);
    }
    if (run.runFolder) {
      section.appendChild(el('div', 'nbflow-detail', `logs and reports: ${run.runFolder}`));
    }
    if (run.state === 'failed' && run.output) {
      section.appendChild(el('pre', 'nbflow-output', run.output));
    }
    root.appendChild(section);
  }

  private renderBuild(root: HTMLElement): void {
    const b = this._build;
    if (!b) {
      return;
    }
    const section = el('section', 'nbflow-build-info');
    if (b.pending) {
      section.textContent = 'Building…';
    } else if (b.error) {
      section.appendChild(el('p', 'nbflow-error-text', b.error));
    } else if (b.info) {
      section.appendChild(el('h3', '', 'Build'));
      section.appendChild(
        el('div', 'nbflow-version', `version ${b.info.version} (${b.info.versionName})`)
      );
      section.appendChild(el('div', 'nbflow-detail', `snapshot ${b.info.snapshot}`));
      b.info.warnings.forEach(w => section.appendChild(el('div', 'nbflow-warning', w)));
    }
    root.appendChild(section);
  }

  private showCell(number: number): void {
    const panel = this._notebook;
    if (!panel) {
      return;
    }
    const index = number - 1;
    if (index >= 0 && index < panel.content.widgets.length) {
      panel.content.activeCellIndex = index;
      panel.content.widgets[index].node.scrollIntoView({ block: 'center' });
    }
  }

  private button(
    label: string,
    className: string,
    action: () => Promise<void>,
    disabled = false
  ): HTMLButtonElement {
    const b = el('button', `jp-mod-styled jp-mod-accept nbflow-button ${className}`, label);
    b.disabled = disabled;
    b.onclick = () => void action();
    return b;
  }

  private _notebook: NotebookPanel | null = null;
  private _view: api.IProjectView | null = null;
  private _run: api.IRunState | null = null;
  private _build: { pending?: boolean; info?: api.IBuildInfo; error?: string } | null = null;
  private _error: string | null = null;
  private _timer = 0;
  private _disk = 0;
  private _seq = 0;
}
