/**
 * The top of a chain named by options (`json:{...}`, `--image-opts`): the
 * top layer, then any backing layers the options describe, each shown
 * under qemu's name for it. What the options leave to the images (a
 * backing file named in a header) the caller follows as for any image.
 */
import { InvalidArgumentError, VdiskError } from '../core/errors.js';
import type { ImageOptions } from '../core/image-options.js';
import type { QDict } from '../core/qdict.js';
import type { Layer } from './layer.js';
import { backingError, openLayer, probeDriver, type LayerContext } from './layer-open.js';
import { formatNodeName, shownName, type BackingName, type NodeName } from './node-filename.js';
import { checkLeftover, judgeBacking, planFormatNode, type BackingChoice, type FormatNodePlan, type ProtocolTopPlan, type SpecContext } from './spec-open.js';

/** The layers the options opened, and what is left to follow. */
export interface SpecChain {
  readonly layers: Layer[];
  /** True when the last layer's backing file comes from its header (the caller follows it). */
  readonly followHeader: boolean;
}

interface Opened {
  readonly layer: Layer;
  readonly backing: BackingChoice;
  readonly plan: FormatNodePlan | ProtocolTopPlan;
}

function isProtocolTop(plan: FormatNodePlan | ProtocolTopPlan): plan is ProtocolTopPlan {
  return 'protocol' in plan;
}

/** A protocol used directly as the image: a file read as raw under the format name `file`, or a null device. */
async function protocolLayer(plan: ProtocolTopPlan, readOnly: boolean, ctx: LayerContext): Promise<Layer> {
  const p = plan.protocol;
  const name = shownName({ exact: p.exact, full: p.full });
  if (p.nullImage) return { image: p.nullImage, files: [], filename: name, path: name, format: plan.driverName, probedRaw: false, backing: undefined, backingPath: undefined };
  const layer = await openLayer({ store: p.store, filename: name, path: p.path ?? name, format: 'raw', readOnly, locking: p.locking }, ctx);
  return { ...layer, format: plan.driverName };
}

/** Opens one node; `format` is `-f` (overrides the options' driver) or, for a backing node, the format its overlay records (used when the options name none). */
async function openNode(options: QDict, spec: SpecContext, ctx: LayerContext, format: { name: string; override: boolean } | undefined): Promise<Opened> {
  if (format !== undefined && (format.override || !options.has('driver'))) options.set('driver', format.name);
  const plan = await planFormatNode(options, spec, (store, filename) => probeDriver(store, filename, ctx.registry));
  if (isProtocolTop(plan)) return { layer: await protocolLayer(plan, spec.readOnly, ctx), backing: { kind: 'header' }, plan };
  const { file } = plan;
  let layer: Layer;
  try {
    const req = { store: file.store, filename: '', path: file.path ?? shownName({ exact: file.exact, full: file.full }), readOnly: spec.readOnly };
    layer = await openLayer({ ...req, format: plan.driver.name, runtime: plan.runtime, locking: file.locking, dataFile: plan.dataFile }, ctx);
  } catch (err) {
    await file.store.close();
    throw err;
  }
  let backing: BackingChoice;
  try {
    backing = judgeBacking(plan.backing, plan.driver.name);
  } catch (err) {
    await layer.image.close();
    throw err;
  }
  return { layer: { ...layer, probedRaw: plan.probed && plan.driver.name === 'raw' }, backing, plan };
}

function checkLeftovers(o: Opened): void {
  if (!isProtocolTop(o.plan)) checkLeftover(o.plan.leftover, 'format', o.plan.driver.name);
}

/** Refusals qemu makes once the node is open: a read-only node opened for writing, force-share on a writable one. */
function checkFlags(opened: Opened, readOnly: boolean): void {
  const flags = opened.plan.flags;
  if (readOnly) return;
  // A node of its own read-only=on is not writable, so qemu's force-share test passes it.
  if (flags.forceShare && !flags.readOnly) throw new InvalidArgumentError('force-share=on can only be used with read-only images');
  if (flags.readOnly) throw new InvalidArgumentError('Block node is read-only');
}

function nameOf(opened: Opened, backing: BackingName): NodeName {
  const plan = opened.plan;
  if (isProtocolTop(plan)) return { exact: plan.protocol.exact, full: plan.protocol.full };
  return formatNodeName(opened.layer.format, plan.given, plan.file, backing);
}

/**
 * Opens the top layer from `spec` and the backing layers its options
 * describe. `format` is `-f` (it overrides the options' driver, as in
 * qemu-img). Errors read `Could not open '<text>': ...`; on error every
 * layer opened is closed.
 */
export async function openSpecChain(spec: ImageOptions, format: string | undefined, sctx: SpecContext, ctx: LayerContext): Promise<SpecChain> {
  const opened: Opened[] = [];
  try {
    try {
      opened.push(await openNode(spec.options.clone(), sctx, ctx, format === undefined ? undefined : { name: format, override: true }));
      checkFlags(opened[0] as Opened, sctx.readOnly);
    } catch (err) {
      throw err instanceof VdiskError ? prefixed(spec.text, err) : err;
    }
    // The backing images the options describe, each read-only; each node's unknown keys are refused
    // once what is below it has opened, as qemu checks them last.
    for (let cur = (opened[0] as Opened).backing; cur.kind === 'spec'; ) {
      let next: Opened;
      try {
        const recorded = opened.at(-1)?.layer.backing?.format;
        next = await openNode(cur.options.clone(), { ...sctx, readOnly: true }, ctx, recorded === undefined ? undefined : { name: recorded, override: false });
      } catch (err) {
        throw backingError(spec.text, err);
      }
      opened.push(next);
      cur = next.backing;
    }
    for (let i = opened.length - 1; i >= 0; i--) {
      try {
        checkLeftovers(opened[i] as Opened);
      } catch (err) {
        throw i === 0 ? prefixed(spec.text, err as VdiskError) : backingError(spec.text, err);
      }
    }
  } catch (err) {
    await Promise.allSettled(opened.map((o) => o.layer.image.close()));
    throw err;
  }
  return { layers: nameLayers(opened, sctx.withBacking && !sctx.describeOnly), followHeader: opened.at(-1)?.backing.kind === 'header' };
}

function prefixed(text: string, err: VdiskError): VdiskError {
  return err.rephrase(`Could not open '${text}': ${err.message}`, { file: err.file ?? text });
}

/** Names bottom-up: a replaced backing file shows in its overlay's `json:` name (not for info, which does no I/O). */
function nameLayers(opened: readonly Opened[], withBacking: boolean): Layer[] {
  const names: NodeName[] = [];
  for (let i = opened.length - 1; i >= 0; i--) {
    const o = opened[i] as Opened;
    const below = names[0];
    let backing: BackingName = { kind: 'header' };
    if (withBacking && o.backing.kind === 'none') backing = { kind: 'none', hadBacking: o.layer.backing !== undefined };
    if (withBacking && o.backing.kind === 'spec' && below) backing = { kind: 'spec', full: below.full };
    names.unshift(nameOf(o, backing));
  }
  // Each layer keeps the backing file its header names (info shows it); which one opens is the options' choice.
  return opened.map((o, i) => ({ ...o.layer, filename: shownName(names[i] as NodeName) }));
}
