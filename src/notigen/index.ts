/** The notigen workload generator: seeded, streaming, template-driven Nova notifications. */
export {
  DEFAULT_START,
  formatNovaDatetime,
  type GenerateOptions,
  type GenerationStats,
  generateNotifications,
  type Notification,
  NotificationGenerator,
} from './generator.js';
export { Prng } from './prng.js';
export {
  type CompiledTemplate,
  compileTemplate,
  DEFAULT_TEMPLATE_DIR,
  loadTemplates,
  type TemplateSet,
  templateSet,
} from './template.js';
