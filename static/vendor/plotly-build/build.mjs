// Builds a plotly.js partial bundle the way plotly.js's own `npm run custom-bundle` does at v4.1.1
// (tasks/partial_bundle.mjs, tasks/util/bundle_wrapper.mjs, esbuild-config.js): an index that
// registers only the wanted traces, bundled and minified by esbuild with the package's settings,
// attribute descriptions stripped (as its strip-meta plugin does), wrapped in the same UMD shell and
// headed by the same licence banner.
//
//   node build.mjs <outfile> <name> <trace,trace,...>
//
// `scatter` is always in (plotly.js's core registers it). Run it where node_modules holds the
// exact versions of package-lock.json: build_plotly.sh does all of this.
import fs from 'node:fs';
import path from 'node:path';
import { createRequire } from 'node:module';

import { build } from 'esbuild';
import { environmentPlugin } from 'esbuild-plugin-environment';
import { glsl } from 'esbuild-plugin-glsl';

const require = createRequire(import.meta.url);
const inlineCss = require('esbuild-plugin-inline-css');

const [outfile, name, traceList] = process.argv.slice(2);
if (!outfile || !name || !traceList) {
    console.error('usage: node build.mjs <outfile> <name> <trace,trace,...>');
    process.exit(2);
}
const plotlyRoot = path.dirname(require.resolve('plotly.js/package.json'));
const { version } = require('plotly.js/package.json');
const traces = [...new Set(traceList.split(','))].filter((trace) => trace && trace !== 'scatter').sort();
for (const trace of traces) {
    if (!fs.existsSync(path.join(plotlyRoot, 'lib', trace + '.js'))) throw new Error('plotly.js ' + version + ' has no module lib/' + trace + '.js');
}

// Meta attributes the browser never needs (plotly.js strips them from its own dist bundles).
const META = [
    /\s*description: '.*',?/g,
    /\s*description: \[[\s\S]*?\]\.join\([\s\S]*?\),?/g,
    /\s*requiredOpts: \[[\s\S]*?\],?/g,
    /\s*otherOpts: \[[\s\S]*?\],?/g,
    /\s*role: '.*',?/g,
    /\s*hrName: '.*',?/g,
];
const stripMeta = {
    name: 'strip-meta-attributes',
    setup(context) {
        context.onLoad({ filter: /\.js$/ }, async ({ path: file }) => {
            let code = await fs.promises.readFile(file, 'utf-8');
            for (const pattern of META) code = code.replace(pattern, '');
            return { contents: code, loader: 'js' };
        });
    },
};

// The partial index sits in lib/ beside the official ones, so './core' and './<trace>' resolve.
const index = path.join(plotlyRoot, 'lib', 'index-latentmap-build-' + name + '.js');
if (fs.existsSync(index)) throw new Error(index + ' exists: is another build running?');
fs.writeFileSync(index, [
    "'use strict';",
    '',
    "var Plotly = require('./core');",
    '',
    'Plotly.register([',
    ...traces.map((trace) => "    require('./" + trace + "'),"),
    ']);',
    '',
    'module.exports = Plotly;',
    '',
].join('\n'));
try {
    await build({
        entryPoints: [index],
        outfile,
        format: 'iife',
        globalName: 'Plotly',
        bundle: true,
        minify: true,
        sourcemap: false,
        plugins: [inlineCss(), glsl({ minify: true }), environmentPlugin({ NODE_DEBUG: false }), stripMeta],
        alias: { regl: '@plotly/regl', stream: 'stream-browserify' },
        define: { global: 'window', 'define.amd': 'false' },
        target: 'es2016',
        logLevel: 'warning',
        absWorkingDir: plotlyRoot,
    });
} finally {
    fs.unlinkSync(index);
}
const css = outfile.replace(/\.js$/, '.css');
if (fs.existsSync(css)) fs.unlinkSync(css);

// The banner of plotly.js's own dist files (its copyright years copied from them) and the UMD shell.
const years = fs.readFileSync(path.join(plotlyRoot, 'dist', 'plotly.min.js'), 'utf8').match(/Copyright (\d{4}-\d{4})/)[1];
const head = [
    '/**',
    '* plotly.js (' + name + ' - minified) v' + version,
    '* Copyright ' + years + ', Plotly, Inc.',
    '* All rights reserved.',
    '* Licensed under the MIT license',
    '*/',
    '(',
    ' function(root, factory) {',
    '  if (typeof module === "object" && module.exports) {',
    '   module.exports = factory();',
    '  } else {',
    '   root.moduleName = factory();',
    '  }',
    '} (typeof self !== "undefined" ? self : this, () => {',
    '',
].join('\n');
const tail = ['', 'window.Plotly = Plotly;', 'return Plotly;', '}));'].join('\n');
fs.writeFileSync(outfile, head + fs.readFileSync(outfile, 'utf8') + tail);
console.log(outfile + ': plotly.js ' + version + ' (' + name + ') with scatter,' + traces.join(','));
