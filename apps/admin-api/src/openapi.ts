import type { INestApplication } from '@nestjs/common';
import { DocumentBuilder, SwaggerModule } from '@nestjs/swagger';

/**
 * Serves the OpenAPI document of the admin API: Swagger UI at /docs, JSON at /docs-json. Call it
 * on the admin application before listen(). The document is public (it holds no data); the
 * routes it describes need the bearer token.
 */
export function setupOpenApi(app: INestApplication): void {
  const config = new DocumentBuilder()
    .setTitle('Relay admin API')
    .setDescription('Accounts, suppression lists, delivery reports and resends of the SMTP relay.')
    .setVersion('1')
    .addBearerAuth({
      type: 'http',
      scheme: 'bearer',
      description: 'ADMIN_TOKEN, or the token generated at first start.',
    })
    .build();
  SwaggerModule.setup('docs', app, () => SwaggerModule.createDocument(app, config), {
    jsonDocumentUrl: 'docs-json',
    yamlDocumentUrl: 'docs-yaml',
  });
}
