import type { ExpertOptions, ManipulationExpert } from './manipulation-expert';
import { PickPlaceExpert } from './pick-place-expert';
import { PushExpert } from './push-expert';
import { ReachExpert } from './reach-expert';
import { DoorOpenExpert } from './door-open-expert';
import { DoorCloseExpert } from './door-close-expert';
import { DrawerCloseExpert, DrawerOpenExpert } from './drawer-experts';
import { PegInsertSideExpert } from './peg-insert-side-expert';
import { SweepIntoExpert } from './sweep-into-expert';
import { SweepExpert } from './sweep-expert';
import { BasketballExpert } from './basketball-expert';
import { ShelfPlaceExpert } from './shelf-place-expert';
import { WindowCloseExpert, WindowOpenExpert } from './window-experts';
import { ButtonPressTopdownExpert } from './button-press-topdown-expert';
import { LeverPullExpert } from './lever-pull-expert';

/** Expert constructors by task kind; a new task's expert adds one entry. */
const EXPERTS: Record<string, (options: ExpertOptions) => ManipulationExpert> = {
  reach: (o) => new ReachExpert(o),
  push: (o) => new PushExpert(o),
  'pick-place': (o) => new PickPlaceExpert(o),
  'door-open': (o) => new DoorOpenExpert(o),
  'door-close': (o) => new DoorCloseExpert(o),
  'drawer-open': (o) => new DrawerOpenExpert(o),
  'drawer-close': (o) => new DrawerCloseExpert(o),
  'peg-insert-side': (o) => new PegInsertSideExpert(o),
  'sweep-into': (o) => new SweepIntoExpert(o),
  sweep: (o) => new SweepExpert(o),
  basketball: (o) => new BasketballExpert(o),
  'shelf-place': (o) => new ShelfPlaceExpert(o),
  'window-open': (o) => new WindowOpenExpert(o),
  'window-close': (o) => new WindowCloseExpert(o),
  'button-press-topdown': (o) => new ButtonPressTopdownExpert(o),
  'lever-pull': (o) => new LeverPullExpert(o),
};

/** The scripted expert of a manipulation task, e.g. `expertFor('push', { noise: 0.1, seed: 3 })`. */
export function expertFor(kind: string, options: ExpertOptions = {}): ManipulationExpert {
  const make = EXPERTS[kind];
  if (!make) throw new Error(`no scripted expert for task '${kind}' (experts: ${Object.keys(EXPERTS).join(', ')})`);
  return make(options);
}

/** Task kinds that have an expert. */
export function expertKinds(): string[] {
  return Object.keys(EXPERTS);
}
