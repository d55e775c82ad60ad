/** Runs the layer conformance suite against MemoryLayer: a plain store, and two-way on a hub. */
import type { PersistenceLayer } from '../../src/persistence/contract';
import { MemoryHub, MemoryLayer, MemoryStore } from '../helpers/memoryLayer';
import { describeLayerConformance, type LayerFault, type LayerHarness } from './layerConformance';

function asMemory(layer: PersistenceLayer): MemoryLayer {
  if (!(layer instanceof MemoryLayer)) throw new TypeError(`not a MemoryLayer: ${layer.id}`);
  return layer;
}

function memoryHarness(withHub: boolean): LayerHarness {
  let layers: MemoryLayer[] = [];
  const track = (layer: MemoryLayer): MemoryLayer => {
    layers.push(layer);
    return layer;
  };
  return {
    async create(spaceId) {
      const options = withHub ? { hub: new MemoryHub({ shuffle: true, duplicate: 0.3, split: true }) } : { store: new MemoryStore() };
      return track(new MemoryLayer(spaceId, options));
    },
    async reopen(layer) {
      return track(await asMemory(layer).reopen());
    },
    async second(layer) {
      const m = asMemory(layer);
      return track(new MemoryLayer(m.spaceId, { store: m.store, hub: m.hub, kind: m.kind, id: m.id }));
    },
    async refresh() {
      // Loads read the shared store directly: nothing is cached.
    },
    injectFault(layer, fault: LayerFault) {
      const faults = asMemory(layer).faults;
      if (fault === 'fail-next-load') faults.failLoads++;
      else faults.failSaves++;
    },
    async cleanup() {
      const open = layers;
      layers = [];
      await Promise.all(open.map((l) => l.close()));
    },
  };
}

describeLayerConformance('MemoryLayer (one-way, shared store)', memoryHarness(false));
describeLayerConformance('MemoryLayer (two-way, on a hub)', memoryHarness(true));
