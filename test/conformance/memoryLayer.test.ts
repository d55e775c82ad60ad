/** Runs the store suite against MemoryLayer as a plain store, and the channel suite against MemoryLayers on a hub. */
import type { PersistenceLayer, SyncChannel } from '../../src/persistence/contract';
import { describeChannelConformance, type ChannelHarness } from './channelConformance';
import { MemoryHub, MemoryLayer, MemoryStore } from '../helpers/memoryLayer';
import { describeStoreConformance, type LayerFault, type LayerHarness } from './storeConformance';

function asMemory(layer: PersistenceLayer): MemoryLayer {
  if (!(layer instanceof MemoryLayer)) throw new TypeError(`not a MemoryLayer: ${layer.id}`);
  return layer;
}

function memoryHarness(): LayerHarness {
  let layers: MemoryLayer[] = [];
  const track = (layer: MemoryLayer): MemoryLayer => {
    layers.push(layer);
    return layer;
  };
  return {
    async create(spaceId) {
      return track(new MemoryLayer(spaceId, { store: new MemoryStore() }));
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

/** Clients of a hub (an in-process server that keeps every op, delivering shuffled, duplicated and split). */
function hubHarness(): ChannelHarness {
  let layers: MemoryLayer[] = [];
  const track = (layer: MemoryLayer): SyncChannel => {
    layers.push(layer);
    return layer as SyncChannel;
  };
  return {
    async create(spaceId) {
      return track(new MemoryLayer(spaceId, { hub: new MemoryHub({ shuffle: true, duplicate: 0.3, split: true }) }));
    },
    async peer(channel) {
      const m = asMemory(channel);
      return track(new MemoryLayer(m.spaceId, { hub: m.hub, id: `${m.id}:peer${layers.length}` }));
    },
    async restart(channel) {
      return track(await asMemory(channel).reopen());
    },
    async settle() {
      // A save resolves once the hub holds it: nothing is in flight.
    },
    async cleanup() {
      const open = layers;
      layers = [];
      await Promise.all(open.map((l) => l.close()));
    },
  };
}

describeStoreConformance('MemoryLayer (one-way, shared store)', memoryHarness());
describeChannelConformance('MemoryLayer (two-way, on a hub)', hubHarness());
