// nbflow in JupyterLab: the plugin that adds the side panel, the cell commands and their menu
// entries. Every change to nbflow.yaml is made by the server (nbflow.authoring.edit).
import { JupyterFrontEnd, JupyterFrontEndPlugin } from '@jupyterlab/application';
import { ICommandPalette, InputDialog } from '@jupyterlab/apputils';
import { CodeMirrorEditor } from '@jupyterlab/codemirror';
import { IDocumentManager } from '@jupyterlab/docmanager';
import { FileEditor, IEditorTracker } from '@jupyterlab/fileeditor';
import { INotebookTracker } from '@jupyterlab/notebook';
import { LabIcon } from '@jupyterlab/ui-components';

import { IDiagnostic } from './api';
import { markManifest } from './manifest';
import { NbflowPanel } from './panel';

const ICON = new LabIcon({
  name: 'nbflow:pipeline',
  svgstr:
    '<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 24 24"><g class="jp-icon3" fill="#616161">' +
    '<circle cx="5" cy="5" r="3"/><circle cx="19" cy="12" r="3"/><circle cx="5" cy="19" r="3"/>' +
    '<path d="M7.5 6.2 16.5 11l-.8 1.4L6.7 7.6zM6.7 16.4l9-4.8.8 1.4-9 4.8z"/></g></svg>'
});

const COMMANDS = {
  assign: 'nbflow:assign-to-step',
  newStep: 'nbflow:new-step',
  setup: 'nbflow:make-setup',
  skip: 'nbflow:skip',
  parameters: 'nbflow:parameters-cell',
  run: 'nbflow:run',
  build: 'nbflow:build',
  create: 'nbflow:create-pipeline'
};

const plugin: JupyterFrontEndPlugin<void> = {
  id: 'nbflow-lab:plugin',
  description: "A notebook's nbflow pipeline on its cells and in a side panel.",
  autoStart: true,
  requires: [INotebookTracker],
  optional: [ICommandPalette, IDocumentManager, IEditorTracker],
  activate: (
    app: JupyterFrontEnd,
    notebooks: INotebookTracker,
    palette: ICommandPalette | null,
    docs: IDocumentManager | null,
    editors: IEditorTracker | null
  ) => {
    const panel = new NbflowPanel({
      text: (path: string) => {
        const widget = docs ? docs.findWidget(path) : undefined;
        const context = widget && docs ? docs.contextForWidget(widget) : undefined;
        return context && context.model.dirty ? context.model.toString() : null;
      },
      mark: (path: string, diagnostics: IDiagnostic[]) => {
        editors?.forEach(widget => {
          if (widget.context.path === path && widget.content.editor instanceof CodeMirrorEditor) {
            markManifest(widget.content.editor.editor, diagnostics);
          }
        });
      },
      reload: async (path: string) => {
        const widget = docs ? docs.findWidget(path) : undefined;
        const context = widget && docs ? docs.contextForWidget(widget) : undefined;
        if (context && !context.model.dirty) {
          await context.revert();
        }
      },
      open: async (path: string, line: number | null, column: number | null) => {
        if (!docs) {
          return;
        }
        const widget = docs.openOrReveal(path);
        if (!widget) {
          return;
        }
        await widget.context.ready;
        const content = widget.content as unknown as Partial<FileEditor>;
        if (content.editor) {
          const position = { line: Math.max(0, (line || 1) - 1), column: Math.max(0, (column || 1) - 1) };
          content.editor.setCursorPosition(position);
          content.editor.revealPosition(position);
          content.editor.focus();
        }
      }
    });
    panel.title.icon = ICON;
    app.shell.add(panel, 'right', { rank: 900 });

    notebooks.currentChanged.connect((_, current) => panel.setNotebook(current));
    panel.setNotebook(notebooks.currentWidget);
    editors?.widgetAdded.connect((_, editor) => {
      if (editor.context.path.endsWith('nbflow.yaml')) {
        void editor.context.ready.then(() => panel.manifestChanged());
        editor.context.model.contentChanged.connect(() => panel.manifestChanged());
        editor.context.fileChanged.connect(() => panel.manifestChanged());
      }
    });

    const hasManifest = () => !!(panel.view && panel.view.manifest);
    const stepNames = () => (panel.view ? panel.view.steps.map(s => s.name) : []);

    app.commands.addCommand(COMMANDS.newStep, {
      label: 'nbflow: Assign to New Step…',
      isEnabled: hasManifest,
      execute: async () => {
        const result = await InputDialog.getText({
          title: 'New step',
          label: 'Step name (lowercase letters, digits and -)',
          placeholder: 'train'
        });
        if (result.button.accept && result.value) {
          await panel.assign(`step:${result.value.trim()}`);
        }
      }
    });
    app.commands.addCommand(COMMANDS.assign, {
      label: 'nbflow: Assign to Step…',
      isEnabled: hasManifest,
      execute: async () => {
        const newStep = 'New step…';
        const result = await InputDialog.getItem({
          title: 'Assign the selected cells to a step',
          items: [...stepNames(), newStep]
        });
        if (!result.button.accept || !result.value) {
          return;
        }
        if (result.value === newStep) {
          await app.commands.execute(COMMANDS.newStep);
        } else {
          await panel.assign(`step:${result.value}`);
        }
      }
    });
    app.commands.addCommand(COMMANDS.setup, {
      label: 'nbflow: Make Setup Cell',
      isEnabled: hasManifest,
      execute: () => panel.assign('setup')
    });
    app.commands.addCommand(COMMANDS.skip, {
      label: 'nbflow: Skip Cell',
      isEnabled: hasManifest,
      execute: () => panel.assign('skip')
    });
    app.commands.addCommand(COMMANDS.parameters, {
      label: 'nbflow: Make Parameters Cell',
      isEnabled: hasManifest,
      execute: () => panel.assign('parameters')
    });
    app.commands.addCommand(COMMANDS.run, {
      label: 'nbflow: Run Pipeline Locally',
      isEnabled: () => !!(panel.view && panel.view.valid),
      execute: () => panel.run()
    });
    app.commands.addCommand(COMMANDS.build, {
      label: 'nbflow: Show Build Version',
      isEnabled: () => !!(panel.view && panel.view.valid),
      execute: () => panel.build()
    });
    app.commands.addCommand(COMMANDS.create, {
      label: 'nbflow: Create Pipeline…',
      isEnabled: () => !!panel.notebook && !hasManifest(),
      execute: () => panel.createPipeline()
    });

    const cellCommands = [
      COMMANDS.assign,
      COMMANDS.newStep,
      COMMANDS.setup,
      COMMANDS.skip,
      COMMANDS.parameters
    ];
    cellCommands.forEach((command, i) => {
      app.contextMenu.addItem({
        command,
        selector: '.jp-Notebook .jp-Cell',
        rank: 80 + i / 10
      });
    });
    if (palette) {
      for (const command of Object.values(COMMANDS)) {
        palette.addItem({ command, category: 'nbflow' });
      }
    }
  }
};

export default plugin;
