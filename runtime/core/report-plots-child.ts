import { compileSpec, renderSvg, type PlotChildRequest } from './report-plots';

/*
 * Renders one plot in a plain Node process, for callers whose own process cannot import ES
 * modules (jest's VM sandbox): reads a PlotChildRequest as JSON on stdin, writes the SVG (or
 * the compiled spec as JSON) to stdout, and on failure the error's message to stderr with
 * exit code 1.
 */
async function main(): Promise<void> {
  const chunks: Buffer[] = [];
  for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
  const request = JSON.parse(Buffer.concat(chunks).toString('utf8')) as PlotChildRequest;
  const output = request.operation === 'compile' ? JSON.stringify(await compileSpec(request.spec)) : await renderSvg(request.spec);
  process.stdout.write(output);
}

main().catch((err: unknown) => {
  process.stderr.write(`${err instanceof Error ? err.message : String(err)}\n`);
  process.exitCode = 1;
});
