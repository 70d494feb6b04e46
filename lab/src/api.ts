// The client of nbflow's server extension (nbflow/lab/handlers.py): every request goes
// through the Jupyter server's authenticated connection (token, XSRF), none elsewhere.
import { URLExt } from '@jupyterlab/coreutils';
import { ServerConnection } from '@jupyterlab/services';

export interface ICellOwner {
  index: number;
  number: number;
  id: string | null;
  owner: string; // "step:<name>", "setup", "skip", "parameters" or ""
}

export interface IStep {
  name: string;
  cells: number[];
  range: string;
  upstream: string[];
  parameters: string[];
  metrics: string[];
  inputs: { variable: string; from: string }[];
}

export interface IEdge {
  from: string;
  to: string;
  variables: string[];
  afterOnly: boolean;
}

export interface ILocation {
  file: string | null;
  target: 'notebook' | 'manifest' | 'other';
  line: number | null;
  column: number | null;
  cell: number | null;
  cellLine: number | null;
}

export interface IDiagnostic extends ILocation {
  code: string;
  title: string;
  severity: 'error' | 'warning';
  message: string;
  hint: string | null;
  related: ILocation[];
  cells: number[];
}

export interface IProjectView {
  notebook: string;
  manifest: string | null;
  manifestText: string | null;
  valid: boolean;
  name?: string | null;
  cells: ICellOwner[];
  steps: IStep[];
  edges: IEdge[];
  parameters: {
    name: string;
    type: string | null;
    default: unknown;
    description: string | null;
  }[];
  metrics: { name: string; goal: string; description: string | null }[];
  diagnostics: IDiagnostic[];
}

export interface IRunState {
  id: string;
  state: 'running' | 'succeeded' | 'failed';
  steps: { name: string; status: string }[];
  output: string;
  metrics: Record<string, number>;
  runFolder: string | null;
  reports: Record<string, string>;
}

export interface IBuildInfo {
  pipeline: string;
  version: string;
  versionName: string;
  snapshot: string;
  warnings: string[];
}

export class NbflowError extends Error {
  constructor(
    message: string,
    readonly status: number
  ) {
    super(message);
  }
}

async function request<T>(
  endpoint: string,
  init: RequestInit = {},
  query: Record<string, string> = {}
): Promise<T> {
  const settings = ServerConnection.makeSettings();
  let url = URLExt.join(settings.baseUrl, 'nbflow', endpoint);
  const params = new URLSearchParams(query).toString();
  if (params) {
    url += '?' + params;
  }
  const response = await ServerConnection.makeRequest(url, init, settings);
  const text = await response.text();
  let data: any = null;
  try {
    data = text ? JSON.parse(text) : null;
  } catch {
    data = { message: text };
  }
  if (!response.ok) {
    throw new NbflowError(
      (data && data.message) || response.statusText,
      response.status
    );
  }
  return data as T;
}

function post<T>(endpoint: string, body: unknown): Promise<T> {
  return request<T>(endpoint, { method: 'POST', body: JSON.stringify(body) });
}

export function project(
  path: string,
  notebook: unknown,
  manifest?: string
): Promise<IProjectView> {
  return post('project', { path, notebook, manifest });
}

export function edit(
  path: string,
  cells: number[],
  target: string,
  notebook: unknown,
  expected: string | null
): Promise<IProjectView> {
  return post('edit', { path, cells, target, notebook, expected });
}

export function initDraft(path: string): Promise<{ draft: string }> {
  return request('init', {}, { path });
}

export function initWrite(path: string): Promise<IProjectView> {
  return post('init', { path });
}

export function startRun(path: string): Promise<IRunState> {
  return post('run', { path });
}

export function runState(id: string): Promise<IRunState> {
  return request(`run/${id}`);
}

export function build(path: string): Promise<IBuildInfo> {
  return post('build', { path });
}

export function filesUrl(path: string): string {
  const settings = ServerConnection.makeSettings();
  return URLExt.join(
    settings.baseUrl,
    'files',
    ...path.split('/').map(encodeURIComponent)
  );
}
