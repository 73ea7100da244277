import type { Sequelize } from 'sequelize';
import { DataTypes, Model } from 'sequelize';

/** One stored trade (`ticks`). Writes go through the repository's batch SQL, not `save()`. */
export class TickRow extends Model {
  declare symbol: string;
  declare ts: Date;
  declare tradeId: string;
  declare price: number;
  declare size: number;
  declare side: string;
  declare source: string;
}

/** One 1-minute bar of the base series (`bars_1m`). */
export class Bar1mRow extends Model {
  declare symbol: string;
  declare bucket: Date;
  declare open: number;
  declare high: number;
  declare low: number;
  declare close: number;
  declare volume: number;
  declare trades: number | null;
  declare origin: 'ticks' | 'candles';
  declare source: string | null;
  /** 1 for a minute; 60 or 1440 for an imported hour or day candle covering its period. */
  declare spanMin: number;
  declare updatedAt: Date;
}

export function defineModels(sequelize: Sequelize): {
  TickRow: typeof TickRow;
  Bar1mRow: typeof Bar1mRow;
} {
  const double = DataTypes.DOUBLE;
  TickRow.init(
    {
      symbol: { type: DataTypes.TEXT, primaryKey: true },
      ts: { type: DataTypes.DATE, primaryKey: true },
      tradeId: { type: DataTypes.TEXT, primaryKey: true, field: 'trade_id' },
      price: { type: double, allowNull: false },
      size: { type: double, allowNull: false },
      side: { type: DataTypes.TEXT, allowNull: false },
      source: { type: DataTypes.TEXT, allowNull: false },
    },
    { sequelize, tableName: 'ticks', timestamps: false },
  );
  Bar1mRow.init(
    {
      symbol: { type: DataTypes.TEXT, primaryKey: true },
      bucket: { type: DataTypes.DATE, primaryKey: true },
      open: { type: double, allowNull: false },
      high: { type: double, allowNull: false },
      low: { type: double, allowNull: false },
      close: { type: double, allowNull: false },
      volume: { type: double, allowNull: false },
      trades: { type: DataTypes.INTEGER },
      origin: { type: DataTypes.TEXT, allowNull: false },
      source: { type: DataTypes.TEXT },
      spanMin: { type: DataTypes.SMALLINT, allowNull: false, defaultValue: 1, field: 'span_min' },
      updatedAt: { type: DataTypes.DATE, field: 'updated_at' },
    },
    { sequelize, tableName: 'bars_1m', timestamps: false },
  );
  return { TickRow, Bar1mRow };
}
