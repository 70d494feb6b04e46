// Diagnostics on the lines of nbflow.yaml in JupyterLab's file editor (CodeMirror 6): each line
// a diagnostic points at is marked, with the messages and hints as its tooltip.
import { RangeSetBuilder, StateEffect, StateField, Text } from '@codemirror/state';
import { Decoration, DecorationSet, EditorView } from '@codemirror/view';

import { IDiagnostic } from './api';

const setDiagnostics = StateEffect.define<IDiagnostic[]>();

function decorations(doc: Text, diagnostics: IDiagnostic[]): DecorationSet {
  const byLine = new Map<number, IDiagnostic[]>();
  for (const d of diagnostics) {
    if (d.line && d.line >= 1 && d.line <= doc.lines) {
      byLine.set(d.line, [...(byLine.get(d.line) || []), d]);
    }
  }
  const builder = new RangeSetBuilder<Decoration>();
  for (const line of [...byLine.keys()].sort((a, b) => a - b)) {
    const here = byLine.get(line) || [];
    const error = here.some(d => d.severity === 'error');
    const title = here
      .map(d => `${d.severity} ${d.code}: ${d.message}` + (d.hint ? `\nhint: ${d.hint}` : ''))
      .join('\n');
    builder.add(
      doc.line(line).from,
      doc.line(line).from,
      Decoration.line({
        // attribute values are set as attributes, never parsed as markup
        attributes: {
          class: error ? 'nbflow-line-error' : 'nbflow-line-warning',
          title
        }
      })
    );
  }
  return builder.finish();
}

const field = StateField.define<DecorationSet>({
  create: () => Decoration.none,
  update(value, tr) {
    for (const effect of tr.effects) {
      if (effect.is(setDiagnostics)) {
        return decorations(tr.state.doc, effect.value);
      }
    }
    return value.map(tr.changes);
  },
  provide: f => EditorView.decorations.from(f)
});

/** Mark the lines of the manifest open in `view` that `diagnostics` point at. */
export function markManifest(view: EditorView, diagnostics: IDiagnostic[]): void {
  if (view.state.field(field, false) === undefined) {
    view.dispatch({ effects: StateEffect.appendConfig.of(field) });
  }
  view.dispatch({ effects: setDiagnostics.of(diagnostics) });
}
