import { OBS } from './observation-layout';
import { gripperCagingReward, hamacherProduct, type CagingInput } from './reward-shaping';
import type { StepView } from './task';

/**
 * Meta-World's v2 pick-and-place reward, shared by the tasks that grasp an object, lift it and
 * carry it to a target (pick-place, basketball, peg-insert-side, shelf-place):
 *
 *   grasp = the caging score of the pads around the object (pick-place's variant, margins from
 *           the pads' start), or 1 while the object is carried when `carriedIsGrasped`;
 *   r = hamacher(grasp, in_place), plus 1 + 5 · in_place while the object is carried (lifted by
 *       more than 1 cm, the gripper not shut and the TCP within `carryRadius`); r = 10 at the target.
 *
 * The task decides what `in_place` and "at the target" mean (its distance, weighting and shaping).
 */
export interface PickPlaceRewardSpec {
  /** The object's radius: pads closer than this to its centre are pressing into it. */
  objectRadius: number;
  /** Pad-to-object distance along y below which a pad counts as caging the object. */
  padSuccessThreshold: number;
  /** TCP-to-object distance in the x-z plane counted as aligned. */
  xzThreshold: number;
  /** Average the grasp score with the caging score (Meta-World's `high_density`). */
  highDensity: boolean;
  /** TCP-to-object distance within which a lifted object counts as carried. */
  carryRadius: number;
  /** Whether a carried object scores a full grasp (Meta-World's basketball and peg-insert-side) instead of its caging score. */
  carriedIsGrasped: boolean;
}

export class PickPlaceReward {
  private caging: CagingInput | undefined;
  private lastGrasp = 0;
  private lastCarried = false;

  /**
   * `object` is the task's array holding the object's position, updated by the task every step
   * before `score`; `initObject` is its position at the start of the episode.
   */
  constructor(
    private readonly spec: PickPlaceRewardSpec,
    private readonly object: Float64Array,
    private readonly initObject: Float64Array,
  ) {}

  /** The grasp score of the last scored step (the `grasp_reward` info). */
  get grasp(): number {
    return this.lastGrasp;
  }

  /** Whether the object was carried at the last scored step. */
  get carried(): boolean {
    return this.lastCarried;
  }

  /** The reward of the step `view` ended, given the task's TCP-to-object distance, in-place score and target test. */
  score(view: StepView, tcpToObject: number, inPlace: number, atTarget: boolean): number {
    const g = view.gripper;
    const spec = this.spec;
    // The gripper is made by the env, so the caging input is completed at the first step.
    this.caging ??= {
      tcp: g.position,
      initTcp: view.initTcp,
      object: this.object,
      initObject: this.initObject,
      leftPadY: 0,
      rightPadY: 0,
      initLeftPadY: g.initLeftPadY,
      initRightPadY: g.initRightPadY,
      effort: 0,
      objectRadius: spec.objectRadius,
      padSuccessThreshold: spec.padSuccessThreshold,
      xzThreshold: spec.xzThreshold,
      highDensity: spec.highDensity,
    };
    const caging = this.caging;
    caging.leftPadY = g.leftPadY();
    caging.rightPadY = g.rightPadY();
    caging.effort = view.action[3];
    const carried = tcpToObject < spec.carryRadius && view.frame[OBS.GRIPPER] > 0 && this.object[2] - 0.01 > this.initObject[2];
    const grasp = spec.carriedIsGrasped && carried ? 1 : gripperCagingReward(caging);
    let reward = hamacherProduct(grasp, inPlace);
    if (carried) reward += 1 + 5 * inPlace;
    if (atTarget) reward = 10;
    this.lastGrasp = grasp;
    this.lastCarried = carried;
    return reward;
  }
}
