// Child process of `aqa info --diagnose` (node/diagnose.ts): one risky probe per process, since
// a broken GPU driver may crash or hang whoever loads it. Plain JavaScript so that it starts
// without the TypeScript loader. Prints one JSON line on stdout.
//
//   node diagnose-probe.mjs adapter <backend>   what Dawn's requestAdapter returns on that backend
//   node diagnose-probe.mjs dlopen <library>    whether the dynamic linker can load the library

const [mode, arg] = process.argv.slice(2);

function print(result) {
  process.stdout.write(`${JSON.stringify(result)}\n`);
  // Dawn may keep threads alive or misbehave at teardown: the answer is out, leave now.
  process.exit(0);
}

if (mode === 'adapter') {
  const { create } = await import('webgpu');
  // OpenGL (ES) adapters exist only at the compatibility feature level.
  const gl = arg === 'opengl' || arg === 'opengles';
  try {
    const gpu = create([`backend=${arg}`]);
    const adapter = await gpu.requestAdapter(gl ? { featureLevel: 'compatibility' } : { powerPreference: 'high-performance' });
    if (!adapter) print({ adapter: null });
    const { vendor, architecture, device, description } = adapter.info;
    const featureLevel = adapter.features.has('core-features-and-limits') ? 'core' : 'compatibility';
    print({ adapter: { vendor, architecture, device, description, featureLevel } });
  } catch (e) {
    print({ error: String(e?.message ?? e) });
  }
} else if (mode === 'dlopen') {
  try {
    process.dlopen({ exports: {} }, arg);
    print({ loaded: true });
  } catch (e) {
    const message = String(e?.message ?? e);
    // process.dlopen loads the library first and only then looks for a Node addon in it: this
    // error means dlopen itself succeeded.
    if (/did not self-register/.test(message)) print({ loaded: true });
    print({ loaded: false, error: message });
  }
} else {
  process.stderr.write(`usage: diagnose-probe.mjs adapter <backend> | dlopen <library>\n`);
  process.exit(2);
}
